//! Notifications a server sends, as subscribers see them.

use std::sync::{Arc, OnceLock};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::config::NotificationListener;
use crate::jsonrpc::{Notification, RequestId};
use crate::protocol::LoggingLevel;

/// How many server notifications a slow subscriber may fall behind before it
/// starts losing the oldest ones.
const NOTIFICATION_BUFFER: usize = 256;

/// Where a connection's notifications go: its listener, and a broadcast
/// channel shared by every session, so subscribers survive reconnects.
///
/// The channel is made by the first subscriber: a broadcast allocates its
/// whole ring up front, and a connection nobody subscribes to (most of a
/// large pool's) should not pay for one. Nothing is lost by waiting: a
/// broadcast keeps no message sent while it has no receiver.
pub(crate) struct Notifier {
    name: Arc<str>,
    listener: Option<NotificationListener>,
    channel: OnceLock<broadcast::Sender<ServerNotification>>,
}

impl Notifier {
    pub(crate) fn new(name: Arc<str>, listener: Option<NotificationListener>) -> Self {
        Notifier {
            name,
            listener,
            channel: OnceLock::new(),
        }
    }

    /// A receiver of every notification sent from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ServerNotification> {
        self.channel
            .get_or_init(|| broadcast::channel(NOTIFICATION_BUFFER).0)
            .subscribe()
    }

    /// Hands a notification to the listener, then to the subscribers.
    pub(crate) fn send(&self, n: Notification) {
        let wanted = self
            .channel
            .get()
            .filter(|channel| channel.receiver_count() > 0);
        if self.listener.is_none() && wanted.is_none() {
            return;
        }
        let note = ServerNotification::from_notification(n);
        if let Some(listener) = &self.listener {
            listener(&self.name, &note);
        }
        if let Some(channel) = wanted {
            let _ = channel.send(note);
        }
    }
}

/// A notification from the server, delivered to every subscriber of
/// [`crate::Connection::notifications`] or [`crate::Client::notifications`].
///
/// Progress notifications go to the progress callback of their request
/// instead (see [`crate::RequestOptions::on_progress`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerNotification {
    /// `notifications/tools/list_changed`
    ToolsListChanged,
    /// `notifications/prompts/list_changed`
    PromptsListChanged,
    /// `notifications/resources/list_changed`
    ResourcesListChanged,
    /// `notifications/resources/updated`
    ResourceUpdated {
        /// The resource that changed.
        uri: String,
    },
    /// `notifications/message`: a log message.
    Log {
        /// Its level.
        level: LoggingLevel,
        /// The logger's name, if given.
        logger: Option<String>,
        /// The payload.
        data: Value,
    },
    /// `notifications/cancelled` for a request the server had sent us.
    Cancelled {
        /// The server's request id.
        request_id: Option<RequestId>,
        /// Why, if given.
        reason: Option<String>,
    },
    /// Any other notification, as it came.
    Other(Notification),
}

impl ServerNotification {
    /// Reads a notification; anything malformed becomes `Other`.
    pub(crate) fn from_notification(n: Notification) -> Self {
        let params = n.params.as_ref();
        let str_field = |key: &str| {
            params
                .and_then(|p| p.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match n.method.as_str() {
            "notifications/tools/list_changed" => ServerNotification::ToolsListChanged,
            "notifications/prompts/list_changed" => ServerNotification::PromptsListChanged,
            "notifications/resources/list_changed" => ServerNotification::ResourcesListChanged,
            "notifications/resources/updated" => match str_field("uri") {
                Some(uri) => ServerNotification::ResourceUpdated { uri },
                None => ServerNotification::Other(n),
            },
            "notifications/message" => {
                let level = params
                    .and_then(|p| p.get("level"))
                    .and_then(|l| serde_json::from_value::<LoggingLevel>(l.clone()).ok());
                match level {
                    Some(level) => ServerNotification::Log {
                        level,
                        logger: str_field("logger"),
                        data: params
                            .and_then(|p| p.get("data"))
                            .cloned()
                            .unwrap_or(Value::Null),
                    },
                    None => ServerNotification::Other(n),
                }
            }
            "notifications/cancelled" => ServerNotification::Cancelled {
                request_id: params
                    .and_then(|p| p.get("requestId"))
                    .and_then(|id| serde_json::from_value(id.clone()).ok()),
                reason: str_field("reason"),
            },
            _ => ServerNotification::Other(n),
        }
    }
}
