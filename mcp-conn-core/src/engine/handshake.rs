//! The handshake: how a fresh session learns the server's version and
//! capabilities. This is the seam a protocol era plugs into.
//!
//! A [`Connection`](crate::Connection) opens a link, starts a [`Session`]
//! over it, and hands the session to a [`Handshake`]; only when that
//! succeeds is the session live. Today there is one implementation,
//! [`InitializeHandshake`]: the handshake era of the protocol (2024-11-05 to
//! 2025-11-25), `initialize` then `notifications/initialized`. The stateless
//! era (2026-07-28: `server/discover`, no `initialize`, version and
//! capabilities in every request's `_meta`) becomes a second implementation,
//! chosen per server by probing; nothing else in the engine needs to know
//! which era a session speaks.

use std::time::Duration;

use super::options::RequestOptions;
use super::session::Session;
use crate::error::Error;
use crate::protocol::*;

/// How a fresh session is brought to life: one per protocol era.
#[async_trait::async_trait]
pub(crate) trait Handshake: Send + Sync {
    /// Runs on a fresh session; on success the session is live and its
    /// client knows the server ([`crate::Client::server`]).
    async fn run(&self, session: &Session) -> Result<InitializeResult, Error>;
}

/// The handshake era's handshake: `initialize` with our latest version,
/// the version check, then `notifications/initialized`.
pub(crate) struct InitializeHandshake<'a> {
    /// Our name and version.
    pub(crate) client_info: &'a Implementation,
    /// What our handlers can do.
    pub(crate) capabilities: ClientCapabilities,
    /// How long `initialize` may take.
    pub(crate) timeout: Duration,
}

#[async_trait::async_trait]
impl Handshake for InitializeHandshake<'_> {
    async fn run(&self, session: &Session) -> Result<InitializeResult, Error> {
        initialize(
            session,
            self.client_info,
            self.capabilities.clone(),
            self.timeout,
        )
        .await
    }
}

/// Runs the `initialize` handshake on a fresh session: our latest version
/// offered, the server's choice checked against the versions we speak, no
/// `notifications/initialized` for a version we cannot speak, and
/// `initialize` never cancelled.
async fn initialize(
    session: &Session,
    client_info: &Implementation,
    capabilities: ClientCapabilities,
    timeout: Duration,
) -> Result<InitializeResult, Error> {
    let client = &session.client;
    let params = InitializeParams {
        protocol_version: LATEST_PROTOCOL_VERSION.to_owned(),
        capabilities,
        client_info: client_info.clone(),
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
    session.set_server(result.clone());
    client.notify("notifications/initialized", None).await?;
    Ok(result)
}
