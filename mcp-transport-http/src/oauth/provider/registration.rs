//! Client identity: pre-registered credentials, a Client ID Metadata
//! Document, or dynamic registration (RFC 7591), and the token endpoint
//! authentication method.

use url::Url;

use crate::oauth::discovery::ServerMetadata;
use crate::oauth::store::ClientRegistration;
use crate::oauth::{OAuthError, Secret};

use super::*;

impl Inner {
    pub(super) fn token_auth_method(meta: &ServerMetadata, has_secret: bool) -> String {
        if !has_secret {
            return "none".into();
        }
        // RFC 8414: absent means client_secret_basic.
        let supported = meta
            .token_endpoint_auth_methods_supported
            .clone()
            .unwrap_or_else(|| vec!["client_secret_basic".into()]);
        ["client_secret_basic", "client_secret_post"]
            .into_iter()
            .find(|m| supported.iter().any(|s| s == m))
            .unwrap_or("none")
            .to_owned()
    }

    pub(super) async fn client_identity(
        &self,
        d: &Discovered,
        redirect_uri: &str,
        known: Option<ClientRegistration>,
    ) -> Result<ClientRegistration, OAuthError> {
        let s = &self.settings;
        if let Some(id) = &s.client_id {
            return Ok(ClientRegistration {
                client_id: id.clone(),
                client_secret: s.client_secret.clone(),
                token_endpoint_auth_method: Self::token_auth_method(
                    &d.meta,
                    s.client_secret.is_some(),
                ),
                redirect_uri: redirect_uri.to_owned(),
                kind: "pre-registered".into(),
            });
        }
        if let Some(url) = &s.client_metadata_url {
            if d.meta.client_id_metadata_document_supported == Some(true) {
                return Ok(ClientRegistration {
                    client_id: url.clone(),
                    client_secret: None,
                    token_endpoint_auth_method: "none".into(),
                    redirect_uri: redirect_uri.to_owned(),
                    kind: "metadata-document".into(),
                });
            }
        }
        if let Some(known) = known {
            if known.kind == "dynamic" && known.redirect_uri == redirect_uri {
                return Ok(known);
            }
        }
        match &d.meta.registration_endpoint {
            Some(endpoint) => self.register(&d.meta, endpoint, redirect_uri).await,
            None => Err(OAuthError::NoClientIdentity {
                issuer: d.meta.issuer.clone(),
            }),
        }
    }

    /// RFC 7591 dynamic client registration.
    pub(super) async fn register(
        &self,
        meta: &ServerMetadata,
        endpoint: &str,
        redirect_uri: &str,
    ) -> Result<ClientRegistration, OAuthError> {
        let bad = |reason: String| OAuthError::Registration {
            url: endpoint.split('?').next().unwrap_or_default().to_owned(),
            reason,
        };
        let url = Url::parse(endpoint).map_err(|e| bad(format!("not a URL: {e}")))?;
        let supported = meta
            .token_endpoint_auth_methods_supported
            .clone()
            .unwrap_or_else(|| vec!["client_secret_basic".into()]);
        let method = ["none", "client_secret_basic", "client_secret_post"]
            .into_iter()
            .find(|m| supported.iter().any(|s| s == m))
            .unwrap_or("none");
        let mut grant_types = vec!["authorization_code"];
        let lists_refresh = meta
            .grant_types_supported
            .as_ref()
            .is_some_and(|g| g.iter().any(|x| x == "refresh_token"));
        if lists_refresh {
            grant_types.push("refresh_token");
        }
        let loopback = Url::parse(redirect_uri).is_ok_and(|u| {
            matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
                || u.scheme() != "https"
        });
        let body = serde_json::json!({
            "client_name": self.settings.client_name,
            "redirect_uris": [redirect_uri],
            "grant_types": grant_types,
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
            "application_type": if loopback { "native" } else { "web" },
        });
        let answer = self.http.post_json(&url, &body).await?;
        let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        if !answer.status.is_success() {
            let error = json
                .get("error")
                .and_then(|v| v.as_str())
                .unwrap_or("no error code");
            let description = json
                .get("error_description")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            return Err(bad(format!(
                "HTTP {}: {error} {description}",
                answer.status.as_u16()
            )));
        }
        let Some(client_id) = json.get("client_id").and_then(|v| v.as_str()) else {
            return Err(bad("the answer has no client_id".into()));
        };
        let client_secret = json
            .get("client_secret")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        let method = json
            .get("token_endpoint_auth_method")
            .and_then(|v| v.as_str())
            .unwrap_or(method);
        let method = match (method, &client_secret) {
            (m @ ("client_secret_basic" | "client_secret_post"), Some(_)) => m,
            _ => "none",
        };
        Ok(ClientRegistration {
            client_id: client_id.to_owned(),
            client_secret,
            token_endpoint_auth_method: method.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            kind: "dynamic".into(),
        })
    }
}
