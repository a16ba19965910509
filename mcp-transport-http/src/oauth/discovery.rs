//! Discovery: the protected resource metadata (RFC 9728) and the
//! authorization server metadata (RFC 8414 and OpenID Connect discovery), in
//! the order the MCP specification gives, with the identity checks.

use serde::{Deserialize, Serialize};
use url::Url;

use super::http::OAuthHttp;
use super::OAuthError;
use crate::config::redacted;

/// The protected resource metadata (RFC 9728) fields the client uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResourceMetadata {
    /// The resource identifier, sent as `resource` exactly as published.
    pub resource: String,
    /// Issuers of the authorization servers for this resource.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Scopes the resource knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
}

/// The authorization server metadata (RFC 8414) fields the client uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerMetadata {
    /// The issuer identifier.
    pub issuer: String,
    /// Where the user agrees.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens become access tokens.
    pub token_endpoint: String,
    /// Dynamic client registration (RFC 7591).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// Scopes the server knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// Grant types the server allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// PKCE methods (S256 is required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Client authentication methods at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 9207: the authorization response carries `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// Client ID Metadata Documents are accepted as `client_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_metadata_document_supported: Option<bool>,
}

impl ServerMetadata {
    /// The metadata a 2025-03-26 server without any metadata implies:
    /// `/authorize`, `/token` and `/register` at the server's origin.
    pub(crate) fn defaults_for(origin: &Url) -> Self {
        let at = |path: &str| origin.join(path).map(String::from).unwrap_or_default();
        ServerMetadata {
            issuer: origin.origin().ascii_serialization(),
            authorization_endpoint: at("/authorize"),
            token_endpoint: at("/token"),
            registration_endpoint: Some(at("/register")),
            scopes_supported: None,
            grant_types_supported: None,
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            token_endpoint_auth_methods_supported: None,
            authorization_response_iss_parameter_supported: None,
            client_id_metadata_document_supported: None,
        }
    }

    /// Whether `scope` is in `scopes_supported`.
    pub(crate) fn supports_scope(&self, scope: &str) -> bool {
        self.scopes_supported
            .as_ref()
            .is_some_and(|s| s.iter().any(|x| x == scope))
    }

    fn check(&self, url: &str) -> Result<(), OAuthError> {
        for (name, value) in [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
        ] {
            let parsed = Url::parse(value).map_err(|e| OAuthError::InvalidMetadata {
                url: url.to_owned(),
                reason: format!("{name}: {e}"),
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(OAuthError::InvalidMetadata {
                    url: url.to_owned(),
                    reason: format!("{name} is not http(s)"),
                });
            }
        }
        Ok(())
    }
}

/// Where to look for the protected resource metadata: the challenge's URL,
/// else the path-aware well-known URL, else the root one.
pub(crate) fn resource_metadata_urls(server: &Url, challenge_url: Option<&str>) -> Vec<Url> {
    let mut urls = Vec::new();
    if let Some(url) = challenge_url.and_then(|u| Url::parse(u).ok()) {
        if matches!(url.scheme(), "http" | "https") {
            urls.push(url);
        }
    }
    let path = server.path().trim_end_matches('/');
    let mut add = |p: String| {
        if let Ok(u) = server.join(&p) {
            if !urls.contains(&u) {
                urls.push(u);
            }
        }
    };
    if !path.is_empty() {
        add(format!("/.well-known/oauth-protected-resource{path}"));
    }
    add("/.well-known/oauth-protected-resource".to_owned());
    urls
}

/// Where to look for an issuer's metadata, in the specification's order.
pub(crate) fn server_metadata_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let candidates = if path.is_empty() {
        vec![
            "/.well-known/oauth-authorization-server".to_owned(),
            "/.well-known/openid-configuration".to_owned(),
        ]
    } else {
        vec![
            format!("/.well-known/oauth-authorization-server{path}"),
            format!("/.well-known/openid-configuration{path}"),
            format!("{path}/.well-known/openid-configuration"),
        ]
    };
    candidates
        .into_iter()
        .filter_map(|p| issuer.join(&p).ok())
        .collect()
}

/// Whether the metadata's `resource` is the server (same origin, and the
/// server's path at or below the resource's path).
pub(crate) fn resource_matches(server: &Url, resource: &str) -> bool {
    let Ok(resource) = Url::parse(resource) else {
        return false;
    };
    if resource.origin() != server.origin() || resource.fragment().is_some() {
        return false;
    }
    let want = resource.path().trim_end_matches('/');
    let have = server.path().trim_end_matches('/');
    have == want || have.starts_with(&format!("{want}/"))
}

/// Fetches the protected resource metadata. `Ok(None)` when there is none
/// at any location (a server of the 2025-03-26 era).
pub(crate) async fn resource_metadata(
    http: &OAuthHttp,
    server: &Url,
    challenge_url: Option<&str>,
) -> Result<Option<ResourceMetadata>, OAuthError> {
    let mut last_error = None;
    for url in resource_metadata_urls(server, challenge_url) {
        let answer = match http.get_json(&url, &[]).await {
            Ok(a) => a,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        if !answer.status.is_success() {
            continue;
        }
        let prm: ResourceMetadata = match serde_json::from_slice(&answer.body) {
            Ok(m) => m,
            Err(e) => {
                last_error = Some(OAuthError::InvalidMetadata {
                    url: redacted(&url),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        if !resource_matches(server, &prm.resource) {
            return Err(OAuthError::ResourceMismatch {
                expected: redacted(server),
                found: prm.resource,
            });
        }
        if prm.authorization_servers.is_empty() {
            return Err(OAuthError::InvalidMetadata {
                url: redacted(&url),
                reason: "authorization_servers is empty".into(),
            });
        }
        return Ok(Some(prm));
    }
    match last_error {
        // Only "not there" everywhere means an old server; a network failure
        // is reported.
        Some(e @ OAuthError::Network { .. }) => Err(e),
        _ => Ok(None),
    }
}

/// Fetches the metadata of `issuer`: the first location that answers with
/// usable metadata wins; its `issuer` must be exactly `issuer`, and it must
/// advertise PKCE S256.
pub(crate) async fn server_metadata(
    http: &OAuthHttp,
    issuer: &str,
) -> Result<ServerMetadata, OAuthError> {
    let issuer_url = Url::parse(issuer).map_err(|e| OAuthError::InvalidMetadata {
        url: issuer.to_owned(),
        reason: format!("authorization server {issuer:?} is not a URL: {e}"),
    })?;
    if !matches!(issuer_url.scheme(), "http" | "https") {
        return Err(OAuthError::InvalidMetadata {
            url: issuer.to_owned(),
            reason: "the issuer is not http(s)".into(),
        });
    }
    for url in server_metadata_urls(&issuer_url) {
        let answer = http.get_json(&url, &[]).await?;
        if !answer.status.is_success() {
            continue;
        }
        let Ok(meta) = serde_json::from_slice::<ServerMetadata>(&answer.body) else {
            continue;
        };
        // RFC 8414 section 3.3: identical, no normalisation.
        if meta.issuer != issuer {
            return Err(OAuthError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: meta.issuer,
            });
        }
        meta.check(&redacted(&url))?;
        require_s256(&meta)?;
        return Ok(meta);
    }
    Err(OAuthError::NoAuthorizationServerMetadata {
        issuer: issuer.to_owned(),
    })
}

/// 2025-03-26: the metadata at the server's origin, else the default endpoints.
pub(crate) async fn legacy_server_metadata(
    http: &OAuthHttp,
    server: &Url,
) -> Result<ServerMetadata, OAuthError> {
    let mut origin = server.clone();
    origin.set_path("/");
    origin.set_query(None);
    origin.set_fragment(None);
    if let Ok(url) = origin.join("/.well-known/oauth-authorization-server") {
        let answer = http
            .get_json(&url, &[("mcp-protocol-version", "2025-03-26")])
            .await?;
        if answer.status.is_success() {
            if let Ok(meta) = serde_json::from_slice::<ServerMetadata>(&answer.body) {
                meta.check(&redacted(&url))?;
                require_s256(&meta)?;
                return Ok(meta);
            }
        }
    }
    Ok(ServerMetadata::defaults_for(&origin))
}

fn require_s256(meta: &ServerMetadata) -> Result<(), OAuthError> {
    let s256 = meta
        .code_challenge_methods_supported
        .as_ref()
        .is_some_and(|m| m.iter().any(|x| x == "S256"));
    if s256 {
        Ok(())
    } else {
        Err(OAuthError::PkceNotSupported {
            issuer: meta.issuer.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("valid")
    }

    #[test]
    fn resource_metadata_locations() {
        let server = url("https://mcp.example.com/public/mcp");
        let got: Vec<String> = resource_metadata_urls(&server, None)
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            got,
            [
                "https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource"
            ]
        );
        let got = resource_metadata_urls(&server, Some("https://mcp.example.com/custom.json"));
        assert_eq!(got[0].as_str(), "https://mcp.example.com/custom.json");
        assert_eq!(got.len(), 3);
        let root = resource_metadata_urls(&url("https://mcp.example.com"), Some("not a url"));
        assert_eq!(root.len(), 1);
    }

    #[test]
    fn server_metadata_locations() {
        let got: Vec<String> = server_metadata_urls(&url("https://auth.example.com/tenant1"))
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            got,
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration"
            ]
        );
        let got: Vec<String> = server_metadata_urls(&url("https://auth.example.com"))
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            got,
            [
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn resource_identity() {
        let server = url("https://mcp.example.com/mcp");
        assert!(resource_matches(&server, "https://mcp.example.com/mcp"));
        assert!(resource_matches(&server, "https://mcp.example.com"));
        assert!(resource_matches(&server, "https://mcp.example.com/"));
        assert!(!resource_matches(&server, "https://evil.example.com/mcp"));
        assert!(!resource_matches(&server, "https://mcp.example.com/mc"));
        assert!(!resource_matches(&server, "https://mcp.example.com/mcp/x"));
        assert!(!resource_matches(&server, "http://mcp.example.com/mcp"));
        assert!(!resource_matches(&server, "not a url"));
    }
}
