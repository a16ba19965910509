//! The handshake: how a fresh session learns the server's version and
//! capabilities. This is the seam a protocol era plugs into.
//!
//! A [`Connection`](crate::Connection) opens a link, starts a [`Session`]
//! over it, and hands the session to a [`Handshake`]; only when that
//! succeeds is the session live. [`open_era`] picks the era: the handshake
//! era (2024-11-05 to 2025-11-25: `initialize` then
//! `notifications/initialized`) or the stateless era (2026-07-28:
//! `server/discover`, then version and capabilities in every request's
//! `_meta`, added by the client's one request path). By default it probes
//! with `server/discover` and falls back to `initialize`; a connection
//! remembers what it found across reconnects.

use std::time::Duration;

use super::options::RequestOptions;
use super::session::Session;
use super::stateless::StatelessMeta;
use crate::era::{
    codes, Detected, DiscoverResult, ProtocolPreference, STATELESS_PROTOCOL_VERSIONS,
};
use crate::error::Error;
use crate::protocol::*;
use crate::transport::TransportError;

/// What opening a session needs to know to pick its era.
pub(crate) struct EraPlan<'a> {
    /// Our name and version.
    pub(crate) client_info: &'a Implementation,
    /// What our handlers can do.
    pub(crate) capabilities: ClientCapabilities,
    /// How long `initialize` (or a forced `server/discover`) may take.
    pub(crate) timeout: Duration,
    /// How long the era probe may go unanswered.
    pub(crate) probe_timeout: Duration,
    /// The configured preference.
    pub(crate) preference: &'a ProtocolPreference,
    /// What an earlier session of this connection found.
    pub(crate) remembered: Option<Detected>,
}

/// What the era probe found.
enum Probe {
    Stateless(String),
    /// Not stateless, and why we think so.
    Handshake(String),
}

/// Brings a fresh session to life in the era its server speaks (see
/// [`ProtocolPreference`]) and returns that era.
pub(crate) async fn open_era(session: &Session, plan: &EraPlan<'_>) -> Result<Detected, Error> {
    let client = &session.client;
    let defaults = || -> Vec<String> {
        STATELESS_PROTOCOL_VERSIONS
            .iter()
            .map(|v| (*v).to_owned())
            .collect()
    };
    let versions = match (plan.preference, &plan.remembered) {
        (ProtocolPreference::Handshake, _) => {
            initialize(session, plan).await?;
            return Ok(Detected::Handshake);
        }
        (ProtocolPreference::Stateless(versions), _) => {
            let versions = if versions.is_empty() {
                defaults()
            } else {
                versions.clone()
            };
            return match probe(session, plan, &versions, plan.timeout).await? {
                Probe::Stateless(v) => Ok(Detected::Stateless(v)),
                Probe::Handshake(why) => Err(Error::UnsupportedVersion {
                    connection: client.inner.name.clone(),
                    offered: format!("not the stateless era ({why})"),
                }),
            };
        }
        (_, Some(Detected::Handshake)) => match initialize(session, plan).await {
            Ok(()) => return Ok(Detected::Handshake),
            // The remembered era no longer works: probe again.
            Err(e @ (Error::Rpc { .. } | Error::UnsupportedVersion { .. })) => {
                tracing::info!(connection = %client.inner.name, error = %e, "initialize failed; probing the server's era again");
                defaults()
            }
            Err(e) => return Err(e),
        },
        (_, Some(Detected::Stateless(v))) => {
            let mut versions = vec![v.clone()];
            versions.extend(defaults().into_iter().filter(|d| d != v));
            versions
        }
        (_, None) => defaults(),
    };
    match probe(session, plan, &versions, plan.probe_timeout).await? {
        Probe::Stateless(v) => Ok(Detected::Stateless(v)),
        Probe::Handshake(why) => {
            tracing::info!(connection = %client.inner.name, %why, "the server speaks the handshake era");
            initialize(session, plan).await?;
            Ok(Detected::Handshake)
        }
    }
}

/// The first of our `versions` (in our order) that the server lists.
fn mutual(versions: &[String], supported: &[String]) -> Option<String> {
    versions.iter().find(|v| supported.contains(v)).cloned()
}

/// Sends `server/discover` offering `versions[0]`; on `-32022` once more with
/// a mutual version. Returns the era found, or an error for what must not
/// fall back (a broken link, 401/403, no mutual stateless version).
async fn probe(
    session: &Session,
    plan: &EraPlan<'_>,
    versions: &[String],
    timeout: Duration,
) -> Result<Probe, Error> {
    let client = &session.client;
    let name = &client.inner.name;
    let Some(mut offered) = versions.first().cloned() else {
        return Ok(Probe::Handshake("no stateless version to offer".into()));
    };
    for attempt in 0..2 {
        let meta = StatelessMeta::new(&offered, &plan.capabilities, plan.client_info);
        let opts = RequestOptions::new().timeout(timeout);
        let outcome = client
            .send_request_as("server/discover", None, None, &opts, Some(&meta))
            .await;
        let supported: Vec<String> = match outcome {
            Ok(raw) => {
                let result = serde_json::from_str::<DiscoverResult>(raw.get())
                    .ok()
                    .filter(|r| !r.supported_versions.is_empty());
                let Some(result) = result else {
                    return Ok(Probe::Handshake(
                        "its answer is not a discover result (no supportedVersions)".into(),
                    ));
                };
                let listed = &result.supported_versions;
                if !listed.is_empty() && !listed.contains(&offered) {
                    match mutual(versions, listed) {
                        Some(v) if attempt == 0 => {
                            offered = v;
                            continue;
                        }
                        _ => {
                            return Ok(Probe::Handshake(format!(
                                "it speaks {listed:?}, none of them ours"
                            )))
                        }
                    }
                }
                let server_info = result
                    .server_info()
                    .unwrap_or_else(|| Implementation::new("unknown", "unknown"));
                session.set_server(InitializeResult {
                    protocol_version: offered.clone(),
                    capabilities: result.capabilities,
                    server_info,
                    instructions: result.instructions,
                    extra: Default::default(),
                });
                let _ = client.inner.stateless.set(meta);
                return Ok(Probe::Stateless(offered));
            }
            Err(Error::Rpc { error, .. }) if error.code == codes::UNSUPPORTED_VERSION => error
                .data
                .as_ref()
                .and_then(|d| d.get("supported"))
                .and_then(|s| serde_json::from_value(s.clone()).ok())
                .unwrap_or_default(),
            Err(Error::Rpc { error, .. })
                if error.code == codes::HEADER_MISMATCH
                    || error.code == codes::MISSING_CAPABILITY =>
            {
                // A stateless server that refuses our request as made.
                return Err(Error::Protocol {
                    connection: name.clone(),
                    message: format!("the server refused `server/discover`: {error}"),
                });
            }
            Err(Error::Rpc { error, .. }) => {
                return Ok(Probe::Handshake(format!("it answered {error}")))
            }
            Err(Error::Timeout { after, .. }) => {
                return Ok(Probe::Handshake(format!("no answer within {after:?}")))
            }
            Err(Error::Transport {
                connection, source, ..
            }) => {
                // An HTTP 4xx (but 401, 403, 429) or a reply that is not
                // JSON-RPC: a server that does not know the request. 401/403
                // are an auth failure, 429/5xx and 3xx a failed connect:
                // never a reason to fall back.
                let legacy = match (&source, source.http_status()) {
                    (_, Some(401 | 403 | 429)) => false,
                    (TransportError::UnexpectedContent { .. } | TransportError::Protocol(_), _) => {
                        true
                    }
                    (_, Some(status)) => (400..500).contains(&status),
                    (_, None) => false,
                };
                if legacy && !source.is_unauthorized() {
                    return Ok(Probe::Handshake(format!("the transport said {source}")));
                }
                return Err(Error::Connect { connection, source });
            }
            Err(e) => return Err(e),
        };
        match mutual(versions, &supported) {
            Some(v) if attempt == 0 => {
                tracing::info!(connection = %name, from = %offered, to = %v, "unsupported version (-32022): retrying with a mutual one");
                offered = v;
            }
            _ => {
                return Err(Error::UnsupportedVersion {
                    connection: name.clone(),
                    offered: format!("the server speaks only {supported:?}"),
                })
            }
        }
    }
    Err(Error::UnsupportedVersion {
        connection: name.clone(),
        offered: format!("the server refused {offered}"),
    })
}

/// Runs the `initialize` handshake on a fresh session: our latest version
/// offered, the server's choice checked against the versions we speak, no
/// `notifications/initialized` for a version we cannot speak, and
/// `initialize` never cancelled.
async fn initialize(session: &Session, plan: &EraPlan<'_>) -> Result<(), Error> {
    let client = &session.client;
    let timeout = plan.timeout;
    let params = InitializeParams {
        protocol_version: LATEST_PROTOCOL_VERSION.to_owned(),
        capabilities: plan.capabilities.clone(),
        client_info: plan.client_info.clone(),
    };
    let params = serde_json::to_value(params).map_err(|e| Error::Protocol {
        connection: client.inner.name.clone(),
        message: e.to_string(),
    })?;
    // Not through `request`: the handshake is part of connecting and is not
    // counted in the request metrics (its failures count as connect errors).
    let raw = client
        .send_request(
            "initialize",
            Some(params),
            &RequestOptions::new().timeout(timeout),
        )
        .await?;
    let result: InitializeResult =
        serde_json::from_str(raw.get()).map_err(|e| Error::Protocol {
            connection: client.inner.name.clone(),
            message: format!("`initialize` returned an unexpected result: {e}"),
        })?;
    if !SUPPORTED_PROTOCOL_VERSIONS.contains(&result.protocol_version.as_str()) {
        // No `notifications/initialized` for a version we
        // cannot speak.
        return Err(Error::UnsupportedVersion {
            connection: client.inner.name.clone(),
            offered: result.protocol_version,
        });
    }
    session.set_server(result);
    client.notify("notifications/initialized", None).await?;
    Ok(())
}
