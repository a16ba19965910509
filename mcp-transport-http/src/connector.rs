//! The client's connector stack: DNS ([`Resolver`]) → TCP (direct or to the
//! proxy, [`ProxyConnector`]) → TLS with ALPN (`hyper-rustls`) →
//! [`Recording`], which notes what the last connection negotiated.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use tower_service::Service;

use crate::config::Settings;
use crate::link::Resolver;
use crate::proxy::{ProxiedIo, ProxyConnector};

/// What the last connection a transport opened negotiated: the proxy it
/// went through, the TLS version, the HTTP version (by ALPN). See
/// [`crate::HttpTransport::negotiated`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiated {
    /// The proxy (`http://host:port`, never credentials), if one was used.
    pub proxy: Option<String>,
    /// The TLS version (`TLSv1.3`, `TLSv1.2`), for `https`.
    pub tls_version: Option<String>,
    /// `HTTP/2` when the server chose it by ALPN, else `HTTP/1.1`.
    pub http_version: &'static str,
}

/// Where a transport keeps the last [`Negotiated`]; its links write it.
pub(crate) type NegotiatedSlot = Arc<Mutex<Option<Negotiated>>>;

pub(crate) type HttpClient = Client<Recording, Full<Bytes>>;

/// The `https` connector wrapped so that each new connection's TLS version,
/// ALPN protocol and proxy are noted in a shared slot.
#[derive(Debug, Clone)]
pub(crate) struct Recording {
    inner: HttpsConnector<ProxyConnector>,
    slot: NegotiatedSlot,
}

type Stream = MaybeHttpsStream<ProxiedIo>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Connecting = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

fn describe(stream: &Stream) -> Negotiated {
    match stream {
        MaybeHttpsStream::Http(io) => Negotiated {
            proxy: io.proxy.clone(),
            tls_version: None,
            http_version: "HTTP/1.1",
        },
        MaybeHttpsStream::Https(tls) => {
            let (io, conn) = tls.inner().get_ref();
            let h2 = conn.alpn_protocol() == Some(b"h2".as_slice());
            Negotiated {
                proxy: io.inner().proxy.clone(),
                tls_version: conn
                    .protocol_version()
                    .and_then(|v| v.as_str())
                    .map(|v| v.replace('_', ".")),
                http_version: if h2 { "HTTP/2" } else { "HTTP/1.1" },
            }
        }
    }
}

impl Service<Uri> for Recording {
    type Response = Stream;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Connecting {
        let connecting = self.inner.call(dst);
        let slot = self.slot.clone();
        Box::pin(async move {
            let stream = connecting.await?;
            let negotiated = describe(&stream);
            tracing::debug!(?negotiated, "connected");
            *slot.lock() = Some(negotiated);
            Ok(stream)
        })
    }
}

/// The pooled client of one link.
pub(crate) fn client(settings: &Settings, slot: NegotiatedSlot) -> HttpClient {
    let mut http = HttpConnector::new_with_resolver(Resolver);
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(settings.connect_timeout));
    let proxied = ProxyConnector {
        http,
        proxies: settings.proxies.clone(),
        proxy_tls: crate::proxy_stream::proxy_tls(&settings.tls),
    };
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*settings.tls).clone())
        .https_or_http()
        .enable_http1();
    #[cfg(feature = "http2")]
    let builder = builder.enable_http2();
    let inner = builder.wrap_connector(proxied);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(Recording { inner, slot })
}

/// The network a transport reaches its server through: its proxies and
/// its TLS settings (trusted roots, client certificate). The transport
/// hands it to its [`TokenProvider`](crate::TokenProvider) when it is
/// built ([`TokenProvider::use_network`](crate::TokenProvider::use_network)),
/// so that OAuth requests take the same way as MCP requests.
#[derive(Debug, Clone)]
// Read by the OAuth client only (feature `oauth`).
#[cfg_attr(not(feature = "oauth"), allow(dead_code))]
pub struct TransportNetwork {
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) proxies: crate::proxy::Proxies,
}

#[cfg(feature = "oauth")]
impl TransportNetwork {
    /// The defaults: the process's proxy variables (none if they are
    /// invalid, with a warning), the platform's and the web's roots.
    pub(crate) fn from_environment() -> Self {
        let env = crate::proxy::Env::Process;
        let proxies =
            crate::proxy::Proxies::new(&Default::default(), None, &env).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "ignoring the proxy environment variables");
                crate::proxy::Proxies::none()
            });
        TransportNetwork {
            tls: Arc::new(crate::tls::default_client_config()),
            proxies,
        }
    }

    /// A pooled HTTP/1.1 client over this network.
    pub(crate) fn client(
        &self,
        connect_timeout: Duration,
    ) -> Client<HttpsConnector<ProxyConnector>, Full<Bytes>> {
        let mut http = HttpConnector::new_with_resolver(Resolver);
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let proxied = ProxyConnector {
            http,
            proxies: self.proxies.clone(),
            proxy_tls: crate::proxy_stream::proxy_tls(&self.tls),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(proxied);
        Client::builder(TokioExecutor::new()).build(https)
    }
}
