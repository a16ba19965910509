//! Handlers for the requests a server may send to the client.
//!
//! A capability is declared in `initialize` only when its handler is
//! registered; without one, the request is answered with
//! `-32601` (items 36, 37). `ping` is always answered by the engine itself.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::jsonrpc::JsonRpcError;
use crate::protocol::{ClientCapabilities, ElicitRequestParams, ElicitResult, ListRootsResult};

/// Answers `roots/list`.
#[async_trait]
pub trait RootsProvider: Send + Sync + 'static {
    /// The roots to expose to the server.
    async fn list_roots(&self) -> Result<ListRootsResult, JsonRpcError>;
}

/// Answers `sampling/createMessage` (an LLM completion on the server's behalf).
///
/// Parameters and result are passed as JSON: their shapes change between
/// protocol revisions more than any other type.
#[async_trait]
pub trait SamplingHandler: Send + Sync + 'static {
    /// Creates a message for the request's `params`; returns the result object
    /// (`role`, `content`, `model`, `stopReason?`).
    async fn create_message(&self, params: Value) -> Result<Value, JsonRpcError>;
}

/// Answers `elicitation/create` (asks the user something).
#[async_trait]
pub trait ElicitationHandler: Send + Sync + 'static {
    /// Whether URL-mode elicitation is supported (form mode always is).
    fn supports_url_mode(&self) -> bool {
        false
    }

    /// Asks the user.
    async fn elicit(&self, params: ElicitRequestParams) -> Result<ElicitResult, JsonRpcError>;
}

/// The handlers a connection registers. All empty by default.
#[derive(Clone, Default)]
pub struct ClientHandlers {
    /// Answers `roots/list`; declares `roots`.
    pub roots: Option<Arc<dyn RootsProvider>>,
    /// Answers `sampling/createMessage`; declares `sampling`.
    pub sampling: Option<Arc<dyn SamplingHandler>>,
    /// Answers `elicitation/create`; declares `elicitation`.
    pub elicitation: Option<Arc<dyn ElicitationHandler>>,
}

impl fmt::Debug for ClientHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHandlers")
            .field("roots", &self.roots.is_some())
            .field("sampling", &self.sampling.is_some())
            .field("elicitation", &self.elicitation.is_some())
            .finish()
    }
}

impl ClientHandlers {
    /// The capabilities these handlers let the client declare.
    pub fn capabilities(&self) -> ClientCapabilities {
        ClientCapabilities {
            roots: self.roots.as_ref().map(|_| json!({})),
            sampling: self.sampling.as_ref().map(|_| json!({})),
            elicitation: self.elicitation.as_ref().map(|h| {
                if h.supports_url_mode() {
                    json!({"form": {}, "url": {}})
                } else {
                    json!({"form": {}})
                }
            }),
            ..ClientCapabilities::default()
        }
    }

    /// Answers one server request (anything but `ping`).
    pub(crate) async fn handle(
        &self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, JsonRpcError> {
        fn to_value<T: serde::Serialize>(
            v: Result<T, JsonRpcError>,
        ) -> Result<Value, JsonRpcError> {
            v.and_then(|r| {
                serde_json::to_value(r).map_err(|e| JsonRpcError::internal(e.to_string()))
            })
        }
        match method {
            "roots/list" => match &self.roots {
                Some(h) => to_value(h.list_roots().await),
                None => Err(JsonRpcError::method_not_found(method)),
            },
            "sampling/createMessage" => match &self.sampling {
                Some(h) => h.create_message(params.unwrap_or_else(|| json!({}))).await,
                None => Err(JsonRpcError::method_not_found(method)),
            },
            "elicitation/create" => match &self.elicitation {
                Some(h) => {
                    let params: ElicitRequestParams =
                        serde_json::from_value(params.unwrap_or_else(|| json!({})))
                            .map_err(|e| JsonRpcError::invalid_params(e.to_string()))?;
                    match params.mode.as_deref() {
                        None | Some("form") => {}
                        Some("url") if h.supports_url_mode() => {}
                        Some(other) => {
                            return Err(JsonRpcError::invalid_params(format!(
                                "elicitation mode `{other}` was not declared"
                            )))
                        }
                    }
                    to_value(h.elicit(params).await)
                }
                None => Err(JsonRpcError::method_not_found(method)),
            },
            _ => Err(JsonRpcError::method_not_found(method)),
        }
    }
}
