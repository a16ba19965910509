//! What the server asks of the client: roots, elicitation.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::*;

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
