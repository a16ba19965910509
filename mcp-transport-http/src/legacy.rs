//! The 2024-11-05 HTTP+SSE transport: GET the URL, wait for the `endpoint`
//! event, POST every message there, read every answer on the stream.

use std::sync::Arc;
use std::time::Duration;

use http::Response;
use hyper::body::Incoming;
use mcp_conn_core::TransportError;
use url::Url;

use crate::answer::{refused, unexpected};
use crate::exchange::{Content, Outgoing};
use crate::link::Shared;
use crate::stream::{EventStream, StreamItem};

/// How long the server may take to name its endpoint.
const ENDPOINT_WAIT: Duration = Duration::from_secs(30);

/// Where the server's `endpoint` event says to POST, if it is on the origin
/// (scheme, host, port) of the configured URL. Anywhere else would receive
/// this link's credentials, so it is refused with
/// [`TransportError::CrossOrigin`].
pub(crate) fn endpoint_on_origin(base: &Url, endpoint: &str) -> Result<Url, TransportError> {
    let resolved = base.join(endpoint.trim()).map_err(|e| {
        TransportError::Protocol(format!("the HTTP+SSE endpoint event is not a URL: {e}"))
    })?;
    if resolved.origin() != base.origin() {
        return Err(TransportError::CrossOrigin {
            endpoint: crate::config::redacted(&resolved),
            origin: base.origin().ascii_serialization(),
        });
    }
    Ok(resolved)
}

impl Shared {
    /// Opens the legacy transport: GET the URL, wait for the `endpoint`
    /// event, POST there from now on; a task reads the stream.
    pub(crate) async fn open_legacy(self: &Arc<Self>) -> Result<(), TransportError> {
        let base = self.settings.url.clone();
        let get = Outgoing::Get {
            last_event_id: None,
        };
        let resp = self.exchange(&base, &get).await?;
        let body = event_stream(resp).await?;
        let mut stream = EventStream::new(
            body,
            self.settings.idle_stream_timeout,
            self.settings.max_message_size,
        );
        let endpoint = tokio::time::timeout(ENDPOINT_WAIT, async {
            loop {
                match stream.next().await? {
                    Some(StreamItem::Control(e)) if e.event == "endpoint" => return Ok(e.data),
                    Some(StreamItem::Control(_)) => {}
                    Some(StreamItem::Messages(msgs)) => {
                        for m in msgs {
                            self.push(m).await;
                        }
                    }
                    None => {
                        return Err(TransportError::Protocol(
                            "the HTTP+SSE stream ended before its endpoint event".into(),
                        ))
                    }
                }
            }
        })
        .await
        .map_err(|_| TransportError::Timeout {
            what: "the HTTP+SSE endpoint event".into(),
            after: ENDPOINT_WAIT,
        })??;
        let endpoint = endpoint_on_origin(&base, &endpoint)?;
        self.session.switch_to_legacy(endpoint);
        let shared = self.clone();
        self.spawn_owned(async move { shared.run_legacy_stream(stream).await });
        Ok(())
    }

    /// Reads the legacy stream: every message is routed; its end, a break
    /// or an idle timeout ends the link. An event over the limit is dropped
    /// (no request can be told from it) and reading goes on.
    async fn run_legacy_stream(&self, mut stream: EventStream) {
        loop {
            match stream.next().await {
                Ok(Some(StreamItem::Messages(msgs))) => {
                    for m in msgs {
                        self.push(m).await;
                    }
                }
                Ok(Some(StreamItem::Control(e))) => {
                    tracing::debug!(event = %e.event, "ignored an event on the HTTP+SSE stream");
                }
                Ok(None) => return self.fatal(TransportError::Eof).await,
                Err(e @ TransportError::MessageTooLarge { .. }) => {
                    tracing::warn!(error = %e, "dropped an event on the HTTP+SSE stream");
                }
                Err(e) => return self.fatal(e).await,
            }
        }
    }
}

/// The body of a legacy GET, if it is an event stream.
async fn event_stream(resp: Response<Incoming>) -> Result<Incoming, TransportError> {
    let status = resp.status();
    if !status.is_success() {
        return Err(refused(resp).await);
    }
    match Content::of(&resp) {
        Content::EventStream => Ok(resp.into_body()),
        _ => Err(unexpected(resp).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_endpoints_on_the_same_origin_are_accepted() {
        let base = Url::parse("http://127.0.0.1:8000/sse").expect("url");
        let ok = endpoint_on_origin(&base, "/messages?session=1").expect("same origin");
        assert_eq!(ok.as_str(), "http://127.0.0.1:8000/messages?session=1");
        assert!(endpoint_on_origin(&base, "http://127.0.0.1:8000/m").is_ok());
        for other in [
            "http://127.0.0.1:8001/messages",
            "https://127.0.0.1:8000/messages",
            "http://evil.example/messages",
            "//evil.example/messages",
        ] {
            let err = endpoint_on_origin(&base, other).expect_err(other);
            assert!(
                matches!(&err, TransportError::CrossOrigin { origin, .. } if origin == "http://127.0.0.1:8000"),
                "{err}"
            );
            assert!(!err.is_retryable());
        }
    }
}
