//! Tools: `tools/list`, `tools/call` and the content blocks of results.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::*;

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
