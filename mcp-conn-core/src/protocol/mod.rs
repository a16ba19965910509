//! The MCP types a client sends and receives (protocol 2024-11-05 to 2025-11-25).
//!
//! Every struct keeps the fields it does not know in `extra`, and
//! [`ContentBlock::Unknown`] keeps content types it does not know, so a server
//! of a newer revision never causes a parse failure.

use serde_json::{Map, Value};

mod completion;
mod decode;
mod lifecycle;
mod logging;
mod prompts;
mod resources;
mod server_requests;
mod tools;

pub use completion::*;
pub use lifecycle::*;
pub use logging::*;
pub use prompts::*;
pub use resources::*;
pub use server_requests::*;
pub use tools::*;

/// The protocol version the client offers in `initialize`.
pub const LATEST_PROTOCOL_VERSION: &str = "2025-11-25";

/// Every protocol version the client accepts from a server, newest first.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[&str] =
    &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Unknown fields, kept as they came.
pub type Extra = Map<String, Value>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_and_content_types_are_kept() {
        // Unknown fields and content types never fail a message.
        let raw = json!({
            "content": [
                {"type": "text", "text": "hi", "annotations": {"priority": 1}},
                {"type": "hologram", "frames": 3},
                {"type": "image", "data": "AA==", "mimeType": "image/png"},
                {"type": "text"},
                7
            ],
            "isError": false,
            "brandNew": {"x": 1}
        });
        let result: CallToolResult = serde_json::from_value(raw.clone()).expect("parses");
        assert_eq!(result.content.len(), 5);
        assert_eq!(result.text(), "hi");
        assert!(matches!(&result.content[1], ContentBlock::Unknown(v) if v["frames"] == 3));
        assert!(
            matches!(&result.content[2], ContentBlock::Image { mime_type, .. } if mime_type == "image/png")
        );
        assert!(matches!(&result.content[3], ContentBlock::Unknown(_)));
        assert_eq!(result.extra["brandNew"], json!({"x": 1}));
        assert_eq!(serde_json::to_value(&result).expect("serialises"), raw);
    }

    #[test]
    fn tool_without_schema_gets_an_object_schema() {
        let tool: Tool = serde_json::from_value(json!({"name": "t"})).expect("parses");
        assert_eq!(tool.input_schema, json!({"type": "object"}));
    }

    #[test]
    fn logging_levels_are_ordered_and_lowercase() {
        assert!(LoggingLevel::Debug < LoggingLevel::Emergency);
        assert_eq!(json!(LoggingLevel::Warning), json!("warning"));
        assert_eq!(LoggingLevel::Notice.to_string(), "notice");
    }

    #[test]
    fn completion_reference_tags() {
        assert_eq!(
            json!(CompletionReference::Prompt { name: "p".into() }),
            json!({"type": "ref/prompt", "name": "p"})
        );
    }
}
