//! `subscriptions/listen` (stateless era): the long-lived request whose
//! stream carries list changes and resource updates. The notifications it
//! brings go through the reader like any other (the same channel, the same
//! `tools/list_changed` counter as in the handshake era).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::client::Client;
use super::options::RequestOptions;
use super::session::Session;

/// How long one listen request may stay open before it is opened again.
const LISTEN_FOR: Duration = Duration::from_secs(24 * 3600);
/// The pause before opening a failed listen stream again, doubled up to
/// [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// What a connection listens for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListenFilter {
    /// Resource URIs whose updates are wanted.
    pub(crate) resources: BTreeSet<String>,
}

impl ListenFilter {
    fn params(&self) -> Value {
        json!({"notifications": {
            "toolsListChanged": true,
            "promptsListChanged": true,
            "resourcesListChanged": true,
            "resourceSubscriptions": self.resources.iter().collect::<Vec<_>>(),
        }})
    }
}

impl Session {
    /// Opens the listen stream of a stateless session (replacing one that is
    /// open), kept open for the session's life; a no-op in the handshake era
    /// (its notifications need no request).
    pub(crate) fn listen(&mut self, filter: &ListenFilter) {
        if !self.client.is_stateless() {
            return;
        }
        if let Some(old) = self.listening.take() {
            old.abort();
        }
        let client = self.client.clone();
        let params = filter.params();
        self.listening = Some(tokio::spawn(listen_loop(client, params)));
    }
}

/// Keeps one `subscriptions/listen` open until the session ends; owned (and
/// aborted) by the session.
async fn listen_loop(client: Client, params: Value) {
    let opts = RequestOptions::new().timeout(LISTEN_FOR);
    let mut pause = FIRST_PAUSE;
    loop {
        let outcome = client
            .request_raw("subscriptions/listen", Some(params.clone()), &opts)
            .await;
        if !client.is_open() {
            return;
        }
        match outcome {
            // A graceful end: the server closed the subscription.
            Ok(_) => pause = FIRST_PAUSE,
            Err(e) => {
                tracing::debug!(connection = %client.connection_name(), error = %e, ?pause, "the listen stream ended; opening it again");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Aborts a listen task when its session goes.
pub(crate) fn stop(task: &mut Option<JoinHandle<()>>) {
    if let Some(task) = task.take() {
        task.abort();
    }
}
