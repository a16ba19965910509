//! Bearer tokens: a provider the transport asks for (new) tokens, and the
//! `WWW-Authenticate` challenge it hands over.

use async_trait::async_trait;

/// What a server's `WWW-Authenticate: Bearer …` header asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthChallenge {
    /// The HTTP status that carried it (401, or 403 for `insufficient_scope`).
    pub status: u16,
    /// `resource_metadata`: where the protected-resource metadata is.
    pub resource_metadata: Option<String>,
    /// `scope`: the scopes the server wants for this request.
    pub scope: Option<String>,
    /// `error` (`invalid_token`, `insufficient_scope`, …).
    pub error: Option<String>,
    /// The header as it came.
    pub raw: String,
}

impl AuthChallenge {
    /// Reads a `WWW-Authenticate` header (the `Bearer` challenge's parameters).
    pub fn parse(status: u16, header: &str) -> Self {
        let mut c = AuthChallenge {
            status,
            raw: header.to_owned(),
            ..Default::default()
        };
        let params = header.trim().strip_prefix("Bearer").unwrap_or(header);
        let mut rest = params.trim_start();
        while !rest.is_empty() {
            let Some(eq) = rest.find('=') else { break };
            let key = rest[..eq]
                .trim()
                .trim_start_matches(',')
                .trim()
                .to_ascii_lowercase();
            rest = rest[eq + 1..].trim_start();
            let value;
            if let Some(quoted) = rest.strip_prefix('"') {
                let mut out = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, ch)) = chars.next() {
                    match ch {
                        '\\' => {
                            if let Some((_, esc)) = chars.next() {
                                out.push(esc);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        _ => out.push(ch),
                    }
                }
                value = out;
                rest = quoted[end.min(quoted.len())..]
                    .trim_start()
                    .trim_start_matches(',')
                    .trim_start();
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                value = rest[..end].trim().to_owned();
                rest = rest[end..].trim_start_matches(',').trim_start();
            }
            match key.as_str() {
                "resource_metadata" => c.resource_metadata = Some(value),
                "scope" => c.scope = Some(value),
                "error" => c.error = Some(value),
                _ => {}
            }
        }
        c
    }
}

/// Supplies bearer tokens for one server.
///
/// On a 401 the transport calls [`TokenProvider::refresh`] once and retries;
/// a second 401 ends the link with `TransportError::Unauthorized`. On a 403
/// with `error="insufficient_scope"` it asks for a token with the scopes the
/// challenge names (step-up), at most twice per request.
#[async_trait]
pub trait TokenProvider: Send + Sync + 'static {
    /// The token to send now, if any.
    async fn token(&self) -> Option<String>;

    /// The server refused the current token; return a new one to retry with,
    /// or `None` to give up.
    async fn refresh(&self, challenge: &AuthChallenge) -> Option<String>;

    /// Called when a transport using this provider is built, with the
    /// network it uses (proxies, trusted roots, client certificate): a
    /// provider that makes HTTP requests of its own (OAuth) should make them
    /// the same way. The default ignores it.
    fn use_network(&self, network: &crate::TransportNetwork) {
        let _ = network;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let c = AuthChallenge::parse(
            401,
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource", scope="files:read files:write""#,
        );
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("https://mcp.example.com/.well-known/oauth-protected-resource")
        );
        assert_eq!(c.scope.as_deref(), Some("files:read files:write"));
        assert_eq!(c.error, None);
        let c = AuthChallenge::parse(
            403,
            r#"Bearer error="insufficient_scope", scope="tools:call", error_description="need \"more\"""#,
        );
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(c.scope.as_deref(), Some("tools:call"));
        let c = AuthChallenge::parse(401, "Bearer error=invalid_token,scope=a");
        assert_eq!(
            (c.error.as_deref(), c.scope.as_deref()),
            (Some("invalid_token"), Some("a"))
        );
        assert_eq!(AuthChallenge::parse(401, "").scope, None);
    }
}
