//! The MCP types a client sends and receives (protocol 2024-11-05 to 2025-11-25).
//!
//! Every struct keeps the fields it does not know in `extra`, and
//! [`ContentBlock::Unknown`] keeps content types it does not know, so a server
//! of a newer revision never causes a parse failure.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

mod decode;

/// The protocol version the client offers in `initialize`.
pub const LATEST_PROTOCOL_VERSION: &str = "2025-11-25";

/// Every protocol version the client accepts from a server, newest first.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[&str] =
    &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Unknown fields, kept as they came.
pub type Extra = Map<String, Value>;

/// The name and version of a client or server implementation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Implementation {
    /// Programmatic name.
    pub name: String,
    /// Version string.
    pub version: String,
    /// Human-readable title (2025-06-18+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Implementation {
    /// An implementation with a name and version.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Implementation {
            name: name.into(),
            version: version.into(),
            title: None,
            extra: Extra::new(),
        }
    }
}

impl Default for Implementation {
    /// This crate's name and version.
    fn default() -> Self {
        Implementation::new("mcp-conn", env!("CARGO_PKG_VERSION"))
    }
}

/// What the client can do, sent in `initialize`. A capability is declared only
/// when a handler for it is registered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientCapabilities {
    /// `roots`: the client answers `roots/list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots: Option<Value>,
    /// `sampling`: the client answers `sampling/createMessage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Value>,
    /// `elicitation`: the client answers `elicitation/create`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elicitation: Option<Value>,
    /// Experimental, free-form capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experimental: Option<Value>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// What a server can do, from its `InitializeResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerCapabilities {
    /// `logging`: the server accepts `logging/setLevel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Value>,
    /// `completions`: the server answers `completion/complete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completions: Option<Value>,
    /// `prompts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<ListCapability>,
    /// `resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesCapability>,
    /// `tools`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<ListCapability>,
    /// Experimental, free-form capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experimental: Option<Value>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A capability with an optional `listChanged` flag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCapability {
    /// The server sends `notifications/*/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_changed: Option<bool>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The `resources` capability.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesCapability {
    /// The server accepts `resources/subscribe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<bool>,
    /// The server sends `notifications/resources/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_changed: Option<bool>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Parameters of `initialize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    /// The newest version the client supports.
    pub protocol_version: String,
    /// The client's capabilities.
    pub capabilities: ClientCapabilities,
    /// The client's name and version.
    pub client_info: Implementation,
}

/// The server's answer to `initialize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    /// The version the session runs under.
    pub protocol_version: String,
    /// What the server can do.
    #[serde(default)]
    pub capabilities: ServerCapabilities,
    /// The server's name and version.
    pub server_info: Implementation,
    /// Usage hints for the model (2025-03-26+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A tool the server offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// The tool's name.
    pub name: String,
    /// Human-readable title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the tool does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    #[serde(default = "empty_object_schema")]
    pub input_schema: Value,
    /// JSON Schema of `structuredContent`, if the tool declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Hints about the tool's behaviour (untrusted unless the server is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object"})
}

/// One page of `tools/list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListToolsResult {
    /// The tools on this page.
    pub tools: Vec<Tool>,
    /// The cursor of the next page, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// 2026-07-28: how long the list may be cached, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

/// The result of `tools/call`. `is_error: true` is a tool failure reported as
/// a result, not a protocol error.
///
/// Read by hand (`protocol/decode.rs`), not derived: a derived `Deserialize` with
/// `#[serde(flatten)]` buffers the whole result before reading it, and this
/// is the result of every tool call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallToolResult {
    /// The content blocks.
    #[serde(default)]
    pub content: Vec<ContentBlock>,
    /// Structured output (2025-06-18+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    /// Whether the tool reported a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

impl CallToolResult {
    /// True when the tool reported a failure (`isError: true`).
    pub fn is_error(&self) -> bool {
        self.is_error == Some(true)
    }

    /// The text of every text block, joined by newlines.
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self
            .content
            .iter()
            .filter_map(|c| match c {
                ContentBlock::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n")
    }
}

/// A content block in a tool result or prompt message.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentBlock {
    /// `{"type":"text","text":…}`
    Text {
        /// The text.
        text: String,
        /// Other fields (`annotations`, `_meta`, …).
        extra: Extra,
    },
    /// `{"type":"image","data":…,"mimeType":…}` (base64 data).
    Image {
        /// Base64 data.
        data: String,
        /// The MIME type.
        mime_type: String,
        /// Other fields.
        extra: Extra,
    },
    /// `{"type":"audio","data":…,"mimeType":…}` (2025-03-26+).
    Audio {
        /// Base64 data.
        data: String,
        /// The MIME type.
        mime_type: String,
        /// Other fields.
        extra: Extra,
    },
    /// `{"type":"resource_link","uri":…,"name":…}` (2025-06-18+).
    ResourceLink {
        /// The resource's URI.
        uri: String,
        /// Other fields (`name`, `mimeType`, …).
        extra: Extra,
    },
    /// `{"type":"resource","resource":{…}}`: an embedded resource.
    Resource {
        /// The embedded contents.
        resource: ResourceContents,
        /// Other fields.
        extra: Extra,
    },
    /// A content type this crate does not know, kept whole.
    Unknown(Value),
}

impl ContentBlock {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        ContentBlock::Text {
            text: text.into(),
            extra: Extra::new(),
        }
    }
}

impl Serialize for ContentBlock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        fn with(kind: &str, extra: &Extra, fields: &[(&str, Value)]) -> Value {
            let mut map = extra.clone();
            map.insert("type".into(), Value::from(kind));
            for (k, v) in fields {
                map.insert((*k).into(), v.clone());
            }
            Value::Object(map)
        }
        let value = match self {
            ContentBlock::Text { text, extra } => {
                with("text", extra, &[("text", text.as_str().into())])
            }
            ContentBlock::Image {
                data,
                mime_type,
                extra,
            } => with(
                "image",
                extra,
                &[
                    ("data", data.as_str().into()),
                    ("mimeType", mime_type.as_str().into()),
                ],
            ),
            ContentBlock::Audio {
                data,
                mime_type,
                extra,
            } => with(
                "audio",
                extra,
                &[
                    ("data", data.as_str().into()),
                    ("mimeType", mime_type.as_str().into()),
                ],
            ),
            ContentBlock::ResourceLink { uri, extra } => {
                with("resource_link", extra, &[("uri", uri.as_str().into())])
            }
            ContentBlock::Resource { resource, extra } => {
                let r = serde_json::to_value(resource).map_err(serde::ser::Error::custom)?;
                with("resource", extra, &[("resource", r)])
            }
            ContentBlock::Unknown(v) => v.clone(),
        };
        value.serialize(s)
    }
}

impl ContentBlock {
    /// Reads a block; anything unrecognised or malformed becomes `Unknown`.
    pub(crate) fn from_value(value: Value) -> ContentBlock {
        let Value::Object(mut map) = value else {
            return ContentBlock::Unknown(value);
        };
        let kind = map.get("type").and_then(Value::as_str).map(str::to_owned);
        let take_str = |map: &mut Extra, key: &str| match map.get(key) {
            Some(Value::String(_)) => match map.remove(key) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            },
            _ => None,
        };
        let block = match kind.as_deref() {
            Some("text") if map.get("text").is_some_and(Value::is_string) => {
                let text = take_str(&mut map, "text").unwrap_or_default();
                map.remove("type");
                ContentBlock::Text { text, extra: map }
            }
            Some(k @ ("image" | "audio"))
                if map.get("data").is_some_and(Value::is_string)
                    && map.get("mimeType").is_some_and(Value::is_string) =>
            {
                let is_image = k == "image";
                let data = take_str(&mut map, "data").unwrap_or_default();
                let mime_type = take_str(&mut map, "mimeType").unwrap_or_default();
                map.remove("type");
                if is_image {
                    ContentBlock::Image {
                        data,
                        mime_type,
                        extra: map,
                    }
                } else {
                    ContentBlock::Audio {
                        data,
                        mime_type,
                        extra: map,
                    }
                }
            }
            Some("resource_link") if map.get("uri").is_some_and(Value::is_string) => {
                let uri = take_str(&mut map, "uri").unwrap_or_default();
                map.remove("type");
                ContentBlock::ResourceLink { uri, extra: map }
            }
            Some("resource") => {
                match map
                    .get("resource")
                    .cloned()
                    .map(serde_json::from_value::<ResourceContents>)
                {
                    Some(Ok(resource)) => {
                        map.remove("type");
                        map.remove("resource");
                        ContentBlock::Resource {
                            resource,
                            extra: map,
                        }
                    }
                    _ => ContentBlock::Unknown(Value::Object(map)),
                }
            }
            _ => ContentBlock::Unknown(Value::Object(map)),
        };
        block
    }
}

/// A resource the server offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// The resource's URI.
    pub uri: String,
    /// The resource's name.
    pub name: String,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One page of `resources/list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResourcesResult {
    /// The resources on this page.
    pub resources: Vec<Resource>,
    /// The cursor of the next page, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A parameterised resource (RFC 6570 URI template).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceTemplate {
    /// The URI template.
    pub uri_template: String,
    /// The template's name.
    pub name: String,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The MIME type of resources made from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One page of `resources/templates/list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResourceTemplatesResult {
    /// The templates on this page.
    pub resource_templates: Vec<ResourceTemplate>,
    /// The cursor of the next page, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The contents of a resource: text or base64 blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceContents {
    /// The resource's URI.
    pub uri: String,
    /// Its MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Text contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Base64 binary contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The result of `resources/read`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadResourceResult {
    /// The contents (a resource may have several parts).
    pub contents: Vec<ResourceContents>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A prompt template the server offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    /// The prompt's name.
    pub name: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The arguments it takes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<PromptArgument>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An argument of a [`Prompt`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptArgument {
    /// The argument's name.
    pub name: String,
    /// What it means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether it must be given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One page of `prompts/list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPromptsResult {
    /// The prompts on this page.
    pub prompts: Vec<Prompt>,
    /// The cursor of the next page, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A message of a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// The content.
    pub content: ContentBlock,
}

/// The result of `prompts/get`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GetPromptResult {
    /// A description of the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The messages.
    #[serde(default)]
    pub messages: Vec<PromptMessage>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A log level for `logging/setLevel` and `notifications/message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoggingLevel {
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Notice.
    Notice,
    /// Warning.
    Warning,
    /// Error.
    Error,
    /// Critical.
    Critical,
    /// Alert.
    Alert,
    /// Emergency.
    Emergency,
}

impl fmt::Display for LoggingLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            LoggingLevel::Debug => "debug",
            LoggingLevel::Info => "info",
            LoggingLevel::Notice => "notice",
            LoggingLevel::Warning => "warning",
            LoggingLevel::Error => "error",
            LoggingLevel::Critical => "critical",
            LoggingLevel::Alert => "alert",
            LoggingLevel::Emergency => "emergency",
        };
        f.write_str(s)
    }
}

/// What `completion/complete` completes: a prompt argument or a resource URI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CompletionReference {
    /// `ref/prompt`.
    #[serde(rename = "ref/prompt")]
    Prompt {
        /// The prompt's name.
        name: String,
    },
    /// `ref/resource`.
    #[serde(rename = "ref/resource")]
    Resource {
        /// The resource URI (template).
        uri: String,
    },
}

/// The result of `completion/complete`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompleteResult {
    /// The completion.
    pub completion: Completion,
}

/// Completion values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    /// Up to 100 values.
    pub values: Vec<String>,
    /// How many values there are in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Whether there are more values than returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_more: Option<bool>,
}

/// A root the client exposes to the server (`roots/list`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Root {
    /// A `file://` URI.
    pub uri: String,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The answer to `roots/list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListRootsResult {
    /// The roots.
    pub roots: Vec<Root>,
}

/// Parameters of `elicitation/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitRequestParams {
    /// `form` (the default when absent) or `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// What to ask the user.
    pub message: String,
    /// Form mode: a flat object schema of primitive fields, with defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_schema: Option<Value>,
    /// Fields this crate does not model (`url`, `elicitationId`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

impl ElicitRequestParams {
    /// The `default` of every field of `requestedSchema` that has one, by
    /// field name: what a form shows pre-filled, and what a client that
    /// accepts without asking must send (SEP-1034).
    ///
    /// ```
    /// # use mcp_conn_core::protocol::ElicitRequestParams;
    /// # use serde_json::json;
    /// let params: ElicitRequestParams = serde_json::from_value(json!({
    ///     "message": "Who?",
    ///     "requestedSchema": {"type": "object", "properties": {
    ///         "name": {"type": "string", "default": "Ada"},
    ///         "age": {"type": "integer"}
    ///     }}
    /// })).unwrap();
    /// assert_eq!(serde_json::Value::Object(params.defaults()), json!({"name": "Ada"}));
    /// ```
    pub fn defaults(&self) -> Map<String, Value> {
        let properties = self
            .requested_schema
            .as_ref()
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object);
        properties
            .into_iter()
            .flatten()
            .filter_map(|(name, field)| Some((name.clone(), field.get("default")?.clone())))
            .collect()
    }
}

/// The user's answer to an elicitation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElicitResult {
    /// `accept`, `decline` or `cancel`.
    pub action: ElicitAction,
    /// The form contents, when accepted in form mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Map<String, Value>>,
}

/// What the user did with an elicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElicitAction {
    /// Accepted (with content in form mode).
    Accept,
    /// Declined.
    Decline,
    /// Dismissed without a choice.
    Cancel,
}

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
