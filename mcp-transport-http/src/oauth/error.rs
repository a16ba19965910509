//! [`OAuthError`]: why authorization failed. No variant holds a token,
//! code, verifier or client secret.

use std::error::Error as StdError;

type Source = Box<dyn StdError + Send + Sync>;

/// Why the client could not get (or keep) authorization for a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// A request to an OAuth endpoint failed on the network (or timed out).
    #[error("OAuth request to {url} failed: {reason}")]
    Network {
        /// The endpoint (no query).
        url: String,
        /// What went wrong.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<Source>,
    },
    /// A metadata or registration endpoint answered with an unexpected status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The endpoint (no query).
        url: String,
        /// The status code (3xx included: redirects are never followed).
        status: u16,
    },
    /// A metadata document or registration answer could not be used.
    #[error("invalid OAuth metadata from {url}: {reason}")]
    InvalidMetadata {
        /// Where it came from.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The protected resource metadata names another resource than the
    /// server: authorization stops (RFC 9728 section 3.3).
    #[error("protected resource metadata is for {found:?}, not for the server {expected:?}")]
    ResourceMismatch {
        /// The server's URL.
        expected: String,
        /// The `resource` the metadata named.
        found: String,
    },
    /// No authorization server metadata at any of the well-known locations.
    #[error("no authorization server metadata found for issuer {issuer:?}")]
    NoAuthorizationServerMetadata {
        /// The issuer looked up.
        issuer: String,
    },
    /// The authorization server metadata's `issuer` is not exactly the
    /// issuer it was looked up for (RFC 8414 section 3.3).
    #[error("authorization server metadata names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch {
        /// The issuer looked up.
        expected: String,
        /// The `issuer` in the metadata.
        found: String,
    },
    /// The authorization server does not advertise PKCE with S256.
    #[error("authorization server {issuer:?} does not advertise PKCE S256")]
    PkceNotSupported {
        /// The issuer.
        issuer: String,
    },
    /// No way to identify the client: no pre-registered credentials, no
    /// usable Client ID Metadata Document and no registration endpoint.
    #[error("no client identity for {issuer:?}: configure a client_id, or use a server that supports dynamic registration")]
    NoClientIdentity {
        /// The issuer.
        issuer: String,
    },
    /// Dynamic client registration was refused or answered badly.
    #[error("dynamic client registration at {url} failed: {reason}")]
    Registration {
        /// The registration endpoint.
        url: String,
        /// What went wrong (the server's error code and description).
        reason: String,
    },
    /// The server needs the user's consent and this provider may not ask
    /// for it ([`NoConsent`](crate::oauth::NoConsent)): no stored token
    /// worked and none could be refreshed. Nothing was registered or sent
    /// to the authorization server's authorization endpoint.
    #[error("this server needs the user's consent (no stored token could be used or refreshed)")]
    ConsentRequired,
    /// The consent step failed (no listener, browser flow broken, timeout).
    #[error("consent step failed: {reason}")]
    Consent {
        /// What went wrong.
        reason: String,
    },
    /// The authorization server sent the user back with an error.
    #[error("authorization refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    AuthorizationDenied {
        /// The `error` parameter.
        error: String,
        /// The `error_description` parameter.
        description: Option<String>,
    },
    /// The redirect's `state` is not the one sent (a forged or stale answer).
    #[error("the authorization response's state does not match the request")]
    StateMismatch,
    /// The authorization server advertises the `iss` response parameter
    /// but the redirect had none (RFC 9207).
    #[error("the authorization response has no iss parameter, which {issuer:?} promised")]
    IssMissing {
        /// The issuer.
        issuer: String,
    },
    /// The redirect's `iss` is not exactly the issuer (RFC 9207).
    #[error("the authorization response's iss {found:?} is not the issuer {expected:?}")]
    IssMismatch {
        /// The issuer.
        expected: String,
        /// The `iss` received.
        found: String,
    },
    /// The redirect carried no authorization code.
    #[error("the authorization response has no code")]
    MissingCode,
    /// The token endpoint refused or answered badly.
    #[error("token request to {url} failed: {reason}")]
    Token {
        /// The token endpoint.
        url: String,
        /// The server's `error` code and description, or the parse failure.
        reason: String,
        /// `invalid_grant` (e.g. a revoked refresh token).
        invalid_grant: bool,
    },
    /// 403 `insufficient_scope` came again after the allowed re-authorizations.
    #[error(
        "server still requires more scope after {attempts} re-authorizations (wanted {scopes:?})"
    )]
    StepUpLimit {
        /// Re-authorizations made.
        attempts: u32,
        /// The scopes the server asked for last.
        scopes: String,
    },
    /// The credential store failed.
    #[error("credential store {location}: {reason}")]
    Store {
        /// The file (or store) concerned.
        location: String,
        /// What went wrong.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<Source>,
    },
    /// A setting is invalid.
    #[error("invalid OAuth setting: {0}")]
    Config(String),
}

impl OAuthError {
    pub(crate) fn consent(reason: impl Into<String>) -> Self {
        OAuthError::Consent {
            reason: reason.into(),
        }
    }
}
