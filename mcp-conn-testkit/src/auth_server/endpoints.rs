//! The authorization server's endpoints (metadata, registration,
//! authorize, token) and the protected MCP endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};
use sha2::Digest;

use super::*;

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn form(s: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

pub(super) async fn handle(
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    counter: Arc<AtomicU64>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let base = format!("http://{addr}");
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let authorization = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut st = lock(&state);
    let cfg = st.config.clone();
    let issuer = format!("{base}{}", cfg.issuer_path);
    let prm_path = "/.well-known/oauth-protected-resource/mcp";
    let meta_path = match cfg.metadata_at {
        MetadataAt::OAuth => format!("/.well-known/oauth-authorization-server{}", cfg.issuer_path),
        MetadataAt::OpenIdAppended => {
            format!("{}/.well-known/openid-configuration", cfg.issuer_path)
        }
    };
    let mut record = OAuthRequest {
        path: path.clone(),
        authorization: authorization.clone(),
        params: form(&query),
        ..Default::default()
    };
    let next = |prefix: &str| format!("{prefix}-{}", counter.fetch_add(1, Ordering::SeqCst) + 1);

    let garbage_for = |name: &str| -> Option<Response<Full<Bytes>>> {
        let (which, status, body) = cfg.garbage.clone()?;
        (which == name).then(|| {
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if status / 100 == 3 {
                resp.headers_mut().insert(
                    http::header::LOCATION,
                    http::HeaderValue::from_static("http://127.0.0.1:9/elsewhere"),
                );
            }
            resp
        })
    };
    let garbage = if path == prm_path {
        garbage_for("prm")
    } else if path == meta_path {
        garbage_for("as-metadata")
    } else if path.ends_with("/register") {
        garbage_for("register")
    } else if path.ends_with("/token") {
        garbage_for("token")
    } else {
        None
    };
    if let Some(resp) = garbage {
        st.log.push(record);
        return resp;
    }
    if method == Method::POST && path == "/mcp" {
        drop(st);
        return mcp(&base, &state, authorization.as_deref(), &body, &next);
    }
    if method == Method::GET && path == prm_path {
        record.endpoint = "prm".into();
        st.log.push(record);
        let mut prm = json!({
            "resource": cfg.resource.clone().unwrap_or_else(|| format!("{base}/mcp")),
            "authorization_servers": [issuer],
        });
        if let Some(s) = &cfg.resource_scopes {
            prm["scopes_supported"] = json!(s);
        }
        return reply(StatusCode::OK, prm);
    }
    if method == Method::GET && path == meta_path {
        record.endpoint = "as-metadata".into();
        st.log.push(record);
        let mut meta = json!({
            "issuer": cfg.metadata_issuer.clone().unwrap_or_else(|| issuer.clone()),
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "response_types_supported": ["code"],
            "grant_types_supported": cfg.grant_types,
            "token_endpoint_auth_methods_supported": cfg.auth_methods,
        });
        if cfg.registration {
            meta["registration_endpoint"] = json!(format!("{issuer}/register"));
        }
        if let Some(m) = &cfg.pkce_methods {
            meta["code_challenge_methods_supported"] = json!(m);
        }
        if let Some(i) = cfg.iss_supported {
            meta["authorization_response_iss_parameter_supported"] = json!(i);
        }
        if let Some(s) = &cfg.as_scopes {
            meta["scopes_supported"] = json!(s);
        }
        if cfg.cimd {
            meta["client_id_metadata_document_supported"] = json!(true);
        }
        return reply(StatusCode::OK, meta);
    }
    let endpoint = path.strip_prefix(&cfg.issuer_path).unwrap_or_default();
    match (method, endpoint) {
        (Method::GET, "/authorize") => {
            record.endpoint = "authorize".into();
            let p = record.params.clone();
            st.log.push(record);
            let get = |k: &str| p.get(k).cloned().unwrap_or_default();
            let client_id = get("client_id");
            let known = st.clients.contains_key(&client_id)
                || cfg.clients.iter().any(|(id, _)| id == &client_id)
                || (cfg.cimd && client_id.starts_with("https://"));
            if !known || get("response_type") != "code" || get("code_challenge_method") != "S256" {
                return reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}));
            }
            let Ok(mut redirect) = url::Url::parse(&get("redirect_uri")) else {
                return reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}));
            };
            {
                let mut q = redirect.query_pairs_mut();
                if cfg.deny {
                    q.append_pair("error", "access_denied");
                } else {
                    let code = next("code");
                    st.codes.insert(
                        code.clone(),
                        Grant {
                            client_id,
                            scopes: get("scope").split_whitespace().map(str::to_owned).collect(),
                            challenge: get("code_challenge"),
                            redirect_uri: get("redirect_uri"),
                            resource: p.get("resource").cloned(),
                        },
                    );
                    q.append_pair("code", &code);
                }
                if let Some(state) = p.get("state") {
                    q.append_pair("state", state);
                }
                match cfg.iss_in_redirect {
                    IssInRedirect::Correct => {
                        q.append_pair("iss", &issuer);
                    }
                    IssInRedirect::Wrong => {
                        q.append_pair("iss", "https://evil.example.com");
                    }
                    IssInRedirect::Omit => {}
                }
            }
            let mut resp = Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = StatusCode::FOUND;
            if let Ok(v) = http::HeaderValue::from_str(redirect.as_str()) {
                resp.headers_mut().insert(http::header::LOCATION, v);
            }
            resp
        }
        (Method::POST, "/register") if cfg.registration => {
            record.endpoint = "register".into();
            record.json = serde_json::from_slice(&body).unwrap_or_default();
            let method = record.json["token_endpoint_auth_method"]
                .as_str()
                .unwrap_or("client_secret_basic")
                .to_owned();
            st.log.push(record);
            let id = next("client");
            let secret = (method != "none").then(|| next("secret"));
            st.clients
                .insert(id.clone(), (secret.clone(), method.clone()));
            let mut out = json!({"client_id": id, "token_endpoint_auth_method": method});
            if let Some(s) = secret {
                out["client_secret"] = json!(s);
            }
            reply(StatusCode::CREATED, out)
        }
        (Method::POST, "/token") => {
            record.endpoint = "token".into();
            record.params = form(&String::from_utf8_lossy(&body));
            let p = record.params.clone();
            st.log.push(record);
            // Client authentication.
            let (client_id, secret) = match authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Basic "))
            {
                Some(b64) => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .ok()
                        .and_then(|d| String::from_utf8(d).ok())
                        .unwrap_or_default();
                    let (id, secret) = decoded.split_once(':').unwrap_or_default();
                    let dec = |s: &str| form(&format!("x={s}")).remove("x").unwrap_or_default();
                    (dec(id), Some(dec(secret)))
                }
                None => (
                    p.get("client_id").cloned().unwrap_or_default(),
                    p.get("client_secret").cloned(),
                ),
            };
            let expected = st
                .clients
                .get(&client_id)
                .map(|(s, _)| s.clone())
                .or_else(|| {
                    cfg.clients
                        .iter()
                        .find(|(id, _)| id == &client_id)
                        .map(|(_, s)| s.clone())
                })
                .or_else(|| (cfg.cimd && client_id.starts_with("https://")).then_some(None));
            match expected {
                Some(want) if want == secret => {}
                _ => return reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"})),
            }
            let scopes = match p.get("grant_type").map(String::as_str) {
                Some("authorization_code") => {
                    let code = p.get("code").cloned().unwrap_or_default();
                    let Some(grant) = st.codes.remove(&code) else {
                        return reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_grant"}));
                    };
                    let verifier = p.get("code_verifier").cloned().unwrap_or_default();
                    if grant.client_id != client_id
                        || s256(&verifier) != grant.challenge
                        || p.get("redirect_uri") != Some(&grant.redirect_uri)
                        || p.get("resource") != grant.resource.as_ref()
                    {
                        return reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_grant"}));
                    }
                    grant.scopes
                }
                Some("refresh_token") => {
                    let rt = p.get("refresh_token").cloned().unwrap_or_default();
                    match st.refresh.get_mut(&rt) {
                        Some((owner, scopes, live)) if *live && owner == &client_id => {
                            *live = false; // rotated
                            scopes.clone()
                        }
                        _ => {
                            return reply(
                                StatusCode::BAD_REQUEST,
                                json!({"error": "invalid_grant", "error_description": "refresh token revoked"}),
                            )
                        }
                    }
                }
                Some("client_credentials") if p.contains_key("resource") => p
                    .get("scope")
                    .map(|s| s.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default(),
                _ => {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        json!({"error": "unsupported_grant_type"}),
                    )
                }
            };
            let access = next("access");
            st.access.insert(
                access.clone(),
                Token {
                    scopes: scopes.clone(),
                    live: true,
                },
            );
            let mut out = json!({
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": cfg.expires_in,
                "scope": scopes.join(" "),
            });
            if cfg.grant_types.iter().any(|g| g == "refresh_token") {
                let refresh = next("refresh");
                st.refresh
                    .insert(refresh.clone(), (client_id, scopes, true));
                out["refresh_token"] = json!(refresh);
            }
            reply(StatusCode::OK, out)
        }
        _ => reply(StatusCode::NOT_FOUND, json!({"error": "not_found"})),
    }
}

/// The protected MCP endpoint.
fn mcp(
    base: &str,
    state: &Mutex<State>,
    authorization: Option<&str>,
    body: &[u8],
    next: &dyn Fn(&str) -> String,
) -> Response<Full<Bytes>> {
    let mut st = lock(state);
    let cfg = st.config.clone();
    let msg: Value = serde_json::from_slice(body).unwrap_or_default();
    let method = msg["method"].as_str().unwrap_or_default().to_owned();
    let token = authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .and_then(|t| st.access.get(t))
        .filter(|t| t.live)
        .cloned();
    let Some(token) = token else {
        st.mcp_status.push(401);
        let mut challenge = String::from("Bearer");
        let mut params = Vec::new();
        if cfg.challenge_metadata_url {
            params.push(format!(
                "resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
            ));
        }
        if let Some(s) = &cfg.challenge_scope {
            params.push(format!("scope=\"{s}\""));
        }
        if !params.is_empty() {
            challenge = format!("Bearer {}", params.join(", "));
        }
        let mut resp = reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid_token"}));
        if let Ok(v) = http::HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
        }
        return resp;
    };
    if method == "tools/call" {
        let missing: Vec<String> = if cfg.always_more_scope {
            vec![next("extra")]
        } else {
            cfg.call_scopes
                .iter()
                .filter(|s| !token.scopes.contains(s))
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            st.mcp_status.push(403);
            let mut resp = reply(
                StatusCode::FORBIDDEN,
                json!({"error": "insufficient_scope"}),
            );
            let header = format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"",
                missing.join(" ")
            );
            if let Ok(v) = http::HeaderValue::from_str(&header) {
                resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
            }
            return resp;
        }
    }
    let Some(id) = msg.get("id").cloned() else {
        st.mcp_status.push(202);
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::ACCEPTED;
        return resp;
    };
    st.mcp_status.push(200);
    let result = match method.as_str() {
        "initialize" => json!({
            "protocolVersion": msg["params"]["protocolVersion"].as_str().unwrap_or("2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "testkit-oauth", "version": "1.0.0"},
        }),
        "tools/list" => json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}),
        "tools/call" => {
            json!({"content": [{"type": "text", "text": msg["params"]["arguments"]["text"].as_str().unwrap_or("ok")}]})
        }
        "ping" => json!({}),
        _ => {
            return reply(
                StatusCode::OK,
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}}),
            )
        }
    };
    reply(
        StatusCode::OK,
        json!({"jsonrpc": "2.0", "id": id, "result": result}),
    )
}
