//! The connection's own request methods, with safe replay: a request that
//! is safe to repeat, whose link died before its answer, is sent once more
//! on the new link when [`ConnectionConfig::replay_after_reconnect`] is on.
//!
//! [`ConnectionConfig::replay_after_reconnect`]: crate::ConnectionConfig::replay_after_reconnect

use std::future::Future;

use serde_json::Value;

use super::Connection;
use crate::engine::{Client, RequestOptions};
use crate::error::Error;
use crate::protocol::{
    CallToolResult, GetPromptResult, Prompt, ReadResourceResult, Resource, Tool,
};
use crate::status::ConnectionStatus;

impl Connection {
    /// Calls a tool through the connection: connects first if need be (as
    /// [`Connection::ensure_connected`] does, never defeating the backoff),
    /// then calls it on the live session. A tool failure comes back as `Ok`
    /// with `is_error()` true.
    ///
    /// With [`replay_after_reconnect`](crate::ConnectionConfig::replay_after_reconnect)
    /// on, a call whose link died before the answer is sent once more on the
    /// new link if the tool was listed as `readOnlyHint` or
    /// `idempotentHint` (see [`Connection::call_tool_with`] to vouch for it
    /// yourself); otherwise it fails with [`Error::ConnectionLost`].
    ///
    /// ```
    /// # use mcp_conn_core::testing::{FakeServer, MockTransport};
    /// # use mcp_conn_core::{Connection, ConnectionConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), mcp_conn_core::Error> {
    /// let config = ConnectionConfig {
    ///     replay_after_reconnect: true,
    ///     ..Default::default()
    /// };
    /// let conn = Connection::with_config("demo", MockTransport::serving(FakeServer::default()), config);
    /// let result = conn.call_tool("echo", serde_json::json!({"text": "hi"})).await?;
    /// assert_eq!(result.text(), "hi");
    /// # conn.disconnect().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<CallToolResult, Error> {
        self.call_tool_with(name, arguments, &RequestOptions::default())
            .await
    }

    /// [`Connection::call_tool`] with options; a call marked
    /// [`idempotent`](RequestOptions::idempotent) may be replayed whatever
    /// the tool's annotations say.
    pub async fn call_tool_with(
        &self,
        name: &str,
        arguments: Value,
        opts: &RequestOptions,
    ) -> Result<CallToolResult, Error> {
        self.with_replay(
            "tools/call",
            |client| opts.idempotent || client.tool_is_repeatable(name),
            |client| {
                let arguments = arguments.clone();
                async move { client.call_tool_with(name, arguments, opts).await }
            },
        )
        .await
    }

    /// Lists the server's tools (every page); safe to replay.
    pub async fn list_tools(&self) -> Result<Vec<Tool>, Error> {
        self.with_replay(
            "tools/list",
            |_| true,
            |c| async move { c.list_tools().await },
        )
        .await
    }

    /// Lists the server's resources (every page); safe to replay.
    pub async fn list_resources(&self) -> Result<Vec<Resource>, Error> {
        self.with_replay(
            "resources/list",
            |_| true,
            |c| async move { c.list_resources().await },
        )
        .await
    }

    /// Reads a resource; safe to replay.
    pub async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, Error> {
        self.with_replay(
            "resources/read",
            |_| true,
            |c| async move { c.read_resource(uri).await },
        )
        .await
    }

    /// Lists the server's prompts (every page); safe to replay.
    pub async fn list_prompts(&self) -> Result<Vec<Prompt>, Error> {
        self.with_replay(
            "prompts/list",
            |_| true,
            |c| async move { c.list_prompts().await },
        )
        .await
    }

    /// Gets a prompt filled with `arguments`; safe to replay.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: &[(String, String)],
    ) -> Result<GetPromptResult, Error> {
        self.with_replay(
            "prompts/get",
            |_| true,
            |c| async move { c.get_prompt(name, arguments.iter().cloned()).await },
        )
        .await
    }

    /// Pings the server (`server/discover` in the stateless era); safe to
    /// replay.
    pub async fn ping(&self) -> Result<(), Error> {
        self.with_replay("ping", |_| true, |c| async move { c.ping().await })
            .await
    }

    /// Runs `op` on the live client; if the link died under it, the request
    /// is `repeatable` and replay is on, runs it once more on the next
    /// session (waiting for it within `connection_timeout`).
    async fn with_replay<T, F, Fut>(
        &self,
        method: &str,
        repeatable: impl FnOnce(&Client) -> bool,
        op: F,
    ) -> Result<T, Error>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let client = self.ensure_connected().await?;
        match op(client.clone()).await {
            Err(lost @ Error::ConnectionLost { .. })
                if self.shared.config.replay_after_reconnect && repeatable(&client) =>
            {
                let Some(next) = self.next_session(&client).await else {
                    return Err(lost);
                };
                tracing::info!(connection = %self.shared.name, %method, "the link died before the answer; sending the request once more on the new link");
                op(next).await
            }
            other => other,
        }
    }

    /// The session after `old`, once the connection has one; `None` when it
    /// stops trying or none comes within `connection_timeout`.
    async fn next_session(&self, old: &Client) -> Option<Client> {
        let mut status = self.subscribe();
        let wait = async {
            loop {
                // Read (and mark seen) before looking at the client, so a
                // change in between wakes `changed` below.
                let now = *status.borrow_and_update();
                match now {
                    ConnectionStatus::Connected => {
                        if let Some(client) = self.shared.live_client() {
                            if !client.same_session(old) {
                                return Some(client);
                            }
                        }
                    }
                    ConnectionStatus::Disconnected | ConnectionStatus::Error => return None,
                    ConnectionStatus::Connecting | ConnectionStatus::Reconnecting => {}
                }
                status.changed().await.ok()?;
            }
        };
        tokio::time::timeout(self.shared.config.connection_timeout, wait)
            .await
            .ok()
            .flatten()
    }
}
