//! The HTTP client every OAuth request goes through: hyper, never following
//! redirects (a 3xx is an answer, not an instruction: following one could
//! send a code, a verifier or a client secret elsewhere, and opens the door
//! to SSRF), every wait bounded, every body bounded.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;

use parking_lot::Mutex;
use url::Url;

use super::OAuthError;
use crate::config::redacted;

/// The largest OAuth answer read (metadata, registration, token).
const MAX_BODY: usize = 1024 * 1024;

type Inner = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<crate::proxy::ProxyConnector>,
    Full<Bytes>,
>;

/// A hyper client for OAuth endpoints; cheap to clone (clones share the
/// network, which the transport may set: [`OAuthHttp::use_network`]).
#[derive(Clone)]
pub(crate) struct OAuthHttp {
    client: Arc<Mutex<(Inner, crate::TransportNetwork)>>,
    timeout: Duration,
}

impl std::fmt::Debug for OAuthHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthHttp")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl OAuthHttp {
    /// A client whose every request (connect, send, read) ends within `timeout`.
    pub(crate) fn new(timeout: Duration) -> Self {
        let network = crate::TransportNetwork::from_environment();
        OAuthHttp {
            client: Arc::new(Mutex::new((network.client(timeout), network))),
            timeout,
        }
    }

    /// From now on, the transport's proxies and TLS settings.
    pub(crate) fn use_network(&self, network: &crate::TransportNetwork) {
        *self.client.lock() = (network.client(self.timeout), network.clone());
    }

    /// Sends `req` and reads the answer, whatever its status, within the timeout.
    pub(crate) async fn send(&self, req: Request<Full<Bytes>>) -> Result<Answer, OAuthError> {
        let where_ = req
            .uri()
            .to_string()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        let network = |reason: String, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
            OAuthError::Network {
                url: where_.clone(),
                reason,
                source,
            }
        };
        let (client, net) = self.client.lock().clone();
        let mut req = req;
        if let Ok(url) = Url::parse(&req.uri().to_string()) {
            // Plain http through a forwarding proxy carries its credentials.
            let uri = req.uri().clone();
            if let Some(auth) = net.proxies.forwarding_auth(&url, &uri) {
                req.headers_mut()
                    .insert(http::header::PROXY_AUTHORIZATION, auth);
            }
        }
        let exchange = async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| network(e.to_string(), Some(Box::new(e))))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| network(format!("reading the answer: {e}"), None))?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(network(
                format!("no answer within {:?}", self.timeout),
                None,
            )),
        }
    }

    /// GETs `url` asking for JSON, with extra headers.
    pub(crate) async fn get_json(
        &self,
        url: &Url,
        headers: &[(&str, &str)],
    ) -> Result<Answer, OAuthError> {
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header(ACCEPT, "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| OAuthError::Config(format!("bad URL {}: {e}", redacted(url))))?;
        self.send(req).await
    }

    /// POSTs a JSON body.
    pub(crate) async fn post_json(
        &self,
        url: &Url,
        body: &serde_json::Value,
    ) -> Result<Answer, OAuthError> {
        let req = Request::builder()
            .method(Method::POST)
            .uri(url.as_str())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| OAuthError::Config(format!("bad URL {}: {e}", redacted(url))))?;
        self.send(req).await
    }

    /// The adapter the `oauth2` crate's token requests run through.
    pub(crate) async fn oauth2(
        &self,
        req: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, OAuthError> {
        let (parts, body) = req.into_parts();
        let req = Request::from_parts(parts, Full::new(Bytes::from(body)));
        let answer = self.send(req).await?;
        let mut resp = Response::new(answer.body.to_vec());
        *resp.status_mut() = answer.status;
        *resp.headers_mut() = answer.headers;
        Ok(resp)
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp {
    type Error = OAuthError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, OAuthError>> + Send + 'c>,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.oauth2(request))
    }
}
