//! What the last tool listing said about repeating each tool: kept per
//! connection (shared by its sessions), read by safe replay.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::protocol::Tool;

/// Per tool name: whether its annotations say a repeat is harmless
/// (`readOnlyHint` or `idempotentHint` true).
#[derive(Debug, Default)]
pub(crate) struct ToolHints(Mutex<HashMap<String, bool>>);

impl ToolHints {
    /// Replaces what is known with a complete listing.
    pub(crate) fn learn(&self, tools: &[Tool]) {
        let hints = tools
            .iter()
            .map(|t| {
                let hint = |key: &str| {
                    t.annotations
                        .as_ref()
                        .and_then(|a| a.get(key))
                        .and_then(serde_json::Value::as_bool)
                        .unwrap_or(false)
                };
                (
                    t.name.clone(),
                    hint("readOnlyHint") || hint("idempotentHint"),
                )
            })
            .collect();
        *self.0.lock() = hints;
    }

    /// Whether the tool was listed as read-only or idempotent.
    pub(crate) fn repeatable(&self, tool: &str) -> bool {
        self.0.lock().get(tool).copied().unwrap_or(false)
    }
}
