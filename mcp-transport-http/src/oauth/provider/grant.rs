//! The `oauth2` client for one registration, the redirect checks (`state`,
//! `iss`, `error`, `code`) and the mapping of token errors.

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, ClientId, ClientSecret, RedirectUrl, RequestTokenError, TokenResponse,
    TokenUrl,
};
use url::Url;

use crate::oauth::discovery::ServerMetadata;
use crate::oauth::store::{ClientRegistration, StoredCredentials};
use crate::oauth::{OAuthError, Secret};

use super::*;

/// An `oauth2` client for one registration and authorization server.
pub(super) fn oauth_client(
    client: &ClientRegistration,
    authorization_endpoint: &str,
    token_endpoint: &str,
) -> Result<
    BasicClient<
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >,
    OAuthError,
> {
    let bad = |what: &str, e: url::ParseError| OAuthError::Config(format!("{what}: {e}"));
    let mut oauth = BasicClient::new(ClientId::new(client.client_id.clone()))
        .set_auth_uri(
            AuthUrl::new(authorization_endpoint.to_owned())
                .map_err(|e| bad("authorization endpoint", e))?,
        )
        .set_token_uri(
            TokenUrl::new(token_endpoint.to_owned()).map_err(|e| bad("token endpoint", e))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(client.redirect_uri.clone()).map_err(|e| bad("redirect URI", e))?,
        );
    match (
        client.token_endpoint_auth_method.as_str(),
        &client.client_secret,
    ) {
        ("client_secret_basic", Some(secret)) => {
            oauth = oauth
                .set_client_secret(ClientSecret::new(secret.expose().to_owned()))
                .set_auth_type(AuthType::BasicAuth);
        }
        ("client_secret_post", Some(secret)) => {
            oauth = oauth
                .set_client_secret(ClientSecret::new(secret.expose().to_owned()))
                .set_auth_type(AuthType::RequestBody);
        }
        // A public client: client_id in the body, no secret.
        _ => oauth = oauth.set_auth_type(AuthType::RequestBody),
    }
    Ok(oauth)
}

/// The checks on the redirect: `state`, then `iss` (RFC 9207, exact string
/// comparison), then `error`, then `code`.
pub(super) fn check_redirect(
    redirect: &Url,
    state: &str,
    meta: &ServerMetadata,
) -> Result<Secret, OAuthError> {
    let mut params = std::collections::HashMap::new();
    for (k, v) in redirect.query_pairs() {
        params
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    if params.get("state").map(String::as_str) != Some(state) {
        return Err(OAuthError::StateMismatch);
    }
    match params.get("iss") {
        Some(iss) if iss != &meta.issuer => {
            return Err(OAuthError::IssMismatch {
                expected: meta.issuer.clone(),
                found: iss.clone(),
            })
        }
        None if meta.authorization_response_iss_parameter_supported == Some(true) => {
            return Err(OAuthError::IssMissing {
                issuer: meta.issuer.clone(),
            })
        }
        _ => {}
    }
    if let Some(error) = params.get("error") {
        return Err(OAuthError::AuthorizationDenied {
            error: error.clone(),
            description: params.get("error_description").cloned(),
        });
    }
    params
        .remove("code")
        .filter(|c| !c.is_empty())
        .map(Secret::new)
        .ok_or(OAuthError::MissingCode)
}

pub(super) fn apply(
    mut creds: StoredCredentials,
    resp: &BasicTokenResponse,
    requested: &[String],
) -> StoredCredentials {
    creds.access_token = Some(Secret::new(resp.access_token().secret().clone()));
    if let Some(refresh) = resp.refresh_token() {
        creds.refresh_token = Some(Secret::new(refresh.secret().clone()));
    }
    creds.expires_at = resp.expires_in().map(|d| now().saturating_add(d.as_secs()));
    creds.scopes = match resp.scopes() {
        Some(granted) => granted.iter().map(|s| s.to_string()).collect(),
        None => requested.to_vec(),
    };
    creds.saved_at = now();
    creds
}

/// The token endpoint's failure, without any token or body in it.
pub(super) fn token_error(
    url: &str,
    e: RequestTokenError<OAuthError, BasicErrorResponse>,
) -> OAuthError {
    let url = url.split('?').next().unwrap_or_default().to_owned();
    match e {
        RequestTokenError::ServerResponse(r) => OAuthError::Token {
            invalid_grant: matches!(r.error(), BasicErrorResponseType::InvalidGrant),
            reason: match r.error_description() {
                Some(d) => format!("{}: {d}", r.error()),
                None => r.error().to_string(),
            },
            url,
        },
        RequestTokenError::Request(e) => e,
        RequestTokenError::Parse(e, _) => OAuthError::Token {
            reason: format!("unreadable answer (at `{}`)", e.path()),
            invalid_grant: false,
            url,
        },
        RequestTokenError::Other(reason) => OAuthError::Token {
            reason,
            invalid_grant: false,
            url,
        },
    }
}
