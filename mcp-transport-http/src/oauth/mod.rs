//! OAuth 2.1 authorization for remote MCP servers (cargo feature `oauth`).
//!
//! [`OAuthProvider`] is a [`TokenProvider`](crate::TokenProvider): give it to
//! [`HttpTransportBuilder::token_provider`](crate::HttpTransportBuilder::token_provider)
//! and the first 401 starts the flow of the MCP authorization
//! specification (2025-11-25 and 2026-07-28, with the 2025-03-26 fallbacks):
//!
//! 1. protected resource metadata (RFC 9728) from the challenge's
//!    `resource_metadata`, else `/.well-known/oauth-protected-resource/<path>`,
//!    else the root; its `resource` must be the server;
//! 2. authorization server metadata (RFC 8414, OpenID discovery) in the
//!    specification's order, first hit wins; `issuer` identical to the one
//!    looked up; PKCE S256 advertised;
//! 3. client identity: pre-registered, else a Client ID Metadata Document,
//!    else dynamic registration (RFC 7591);
//! 4. authorization code with PKCE S256, `state` and `resource` (RFC 8707),
//!    through a [`Consent`] step; the `iss` response parameter (RFC 9207)
//!    compared as a plain string;
//! 5. tokens kept in a [`CredentialStore`] keyed by issuer and resource,
//!    refreshed before they expire and on a 401; consent again only when
//!    refreshing fails.
//!
//! ```no_run
//! use std::sync::Arc;
//! use mcp_transport_http::HttpTransport;
//! use mcp_transport_http::oauth::{BrowserConsent, FileStore, OAuthProvider};
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let oauth = OAuthProvider::builder("https://mcp.example.com/mcp")
//!     .consent(BrowserConsent::new(8765))
//!     .store(Arc::new(FileStore::new("/home/me/.config/mcp-conn/tokens.json")))
//!     .build()?;
//! let transport = HttpTransport::builder("https://mcp.example.com/mcp")
//!     .token_provider(oauth.clone())
//!     .build()?;
//! # Ok(())
//! # }
//! ```
//!
//! Every OAuth request goes through a hyper client that never follows a
//! redirect and bounds every wait. Tokens, codes, verifiers and client
//! secrets are [`Secret`]s: never in `Debug`, `Display`, logs or errors.

mod consent;
mod discovery;
mod error;
mod http;
mod provider;
mod secret;
mod store;

pub use consent::{BrowserConsent, Consent, HeadlessConsent, NoConsent};
pub use discovery::{ResourceMetadata, ServerMetadata};
pub use error::OAuthError;
pub use provider::{OAuthProvider, OAuthProviderBuilder, MAX_STEP_UPS};
pub use secret::Secret;
pub use store::{
    ClientRegistration, CredentialStore, FileStore, MemoryStore, StoreKey, StoredCredentials,
};
