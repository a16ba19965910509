//! Proxies: which one a request goes through (`HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY`, `NO_PROXY` the way curl reads them, or an explicit
//! setting), and the connector that dials it: a `CONNECT` tunnel for
//! `https`, absolute-form requests for plain `http`.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::HeaderValue;
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_service::Service;

use crate::config::{HttpConfigError, HttpTransportBuilder};
use crate::link::Resolver;
use crate::proxy_stream::ProxyStream;

/// Where environment variables come from: the process (default) or a map
/// given to the builder (tests, hosts that pass an environment along).
#[derive(Clone, Default)]
pub(crate) enum Env {
    #[default]
    Process,
    Map(HashMap<String, String>),
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may hold proxy credentials: names only.
        match self {
            Env::Process => f.write_str("process"),
            Env::Map(map) => f.debug_set().entries(map.keys()).finish(),
        }
    }
}

impl Env {
    /// A variable's value.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        match self {
            Env::Process => std::env::var(name).ok(),
            Env::Map(map) => map.get(name).cloned(),
        }
    }

    /// The first of `NAME`, `name` that is set (curl's order).
    fn either(&self, upper: &str) -> Option<String> {
        self.get(upper)
            .or_else(|| self.get(&upper.to_ascii_lowercase()))
    }
}

/// The proxy settings as given to the builder.
#[derive(Clone, Default)]
pub(crate) enum ProxyOption {
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY` (default).
    #[default]
    FromEnv,
    /// Never a proxy.
    Disabled,
    /// This proxy for every request (`NO_PROXY` still applies unless
    /// `no_proxy` is given).
    Url(String),
}

/// The checked proxy rules of a transport.
#[derive(Clone)]
pub(crate) struct Proxies {
    matcher: Option<Arc<Matcher>>,
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // hyper-util's `Matcher` shows the proxies' URLs without credentials.
        match &self.matcher {
            None => f.write_str("none"),
            Some(m) => fmt::Debug::fmt(m, f),
        }
    }
}

/// Where a proxy is, for reports: `http://host:port`, no credentials.
pub(crate) fn proxy_name(intercept: &Intercept) -> String {
    let uri = intercept.uri();
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str())
    )
}

fn check(setting: &'static str, value: &str) -> Result<(), HttpConfigError> {
    let bad = |reason: String| HttpConfigError::InvalidProxy { setting, reason };
    // No scheme means http, as curl reads it.
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "proxy scheme {:?} is not supported (http:// and https:// proxies are)",
            url.scheme()
        )));
    }
    if url.host_str().map_or(true, str::is_empty) {
        return Err(bad("no host".into()));
    }
    Ok(())
}

impl Proxies {
    /// No proxy for anything.
    #[cfg(feature = "oauth")]
    pub(crate) fn none() -> Self {
        Proxies { matcher: None }
    }

    /// The rules for `option`, reading variables from `env`; `no_proxy`
    /// replaces `NO_PROXY` when given.
    pub(crate) fn new(
        option: &ProxyOption,
        no_proxy: Option<&str>,
        env: &Env,
    ) -> Result<Self, HttpConfigError> {
        // Commas or spaces between entries (both are in use).
        let no = no_proxy
            .map(str::to_owned)
            .or_else(|| env.either("NO_PROXY"))
            .unwrap_or_default()
            .split([',', ' ', '\t'])
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(",");
        let builder = match option {
            ProxyOption::Disabled => return Ok(Proxies { matcher: None }),
            ProxyOption::Url(url) => {
                check("proxy", url)?;
                Matcher::builder().all(url.clone())
            }
            ProxyOption::FromEnv => {
                let mut builder = Matcher::builder();
                for (name, value) in [
                    ("ALL_PROXY", env.either("ALL_PROXY")),
                    ("HTTP_PROXY", env.either("HTTP_PROXY")),
                    ("HTTPS_PROXY", env.either("HTTPS_PROXY")),
                ] {
                    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
                        continue;
                    };
                    check(name, &value)?;
                    builder = match name {
                        "ALL_PROXY" => builder.all(value),
                        "HTTP_PROXY" => builder.http(value),
                        _ => builder.https(value),
                    };
                }
                builder
            }
        };
        Ok(Proxies {
            matcher: Some(Arc::new(builder.no(no).build())),
        })
    }

    /// The `Proxy-Authorization` a plain `http` request to `url` carries:
    /// the credentials of the forwarding proxy it goes through, if any
    /// (an `https` request gives them to the tunnel instead).
    pub(crate) fn forwarding_auth(&self, url: &url::Url, uri: &Uri) -> Option<HeaderValue> {
        if url.scheme() != "http" {
            return None;
        }
        let mut auth = self.intercept(uri)?.basic_auth()?.clone();
        auth.set_sensitive(true);
        Some(auth)
    }

    /// The proxy a request to `dst` goes through, if any.
    pub(crate) fn intercept(&self, dst: &Uri) -> Option<Intercept> {
        self.matcher.as_ref()?.intercept(dst)
    }
}

/// Proxy settings.
impl HttpTransportBuilder {
    /// Sends every request through this proxy (`http://` or `https://`, `[user:password@]host:port`),
    /// whatever the environment says; `https` goes through a `CONNECT`
    /// tunnel. Credentials in the URL are sent as `Proxy-Authorization:
    /// Basic` and never logged. `NO_PROXY` still applies (see
    /// [`Self::no_proxy`]). Default: the environment's proxy variables.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = ProxyOption::Url(url.into());
        self
    }

    /// Never uses a proxy, whatever the environment says.
    pub fn disable_proxy(mut self) -> Self {
        self.proxy = ProxyOption::Disabled;
        self
    }

    /// Hosts reached without the proxy, in `NO_PROXY`'s syntax (comma or
    /// space separated names, matching their subdomains too; IP addresses and
    /// networks like `10.0.0.0/8`; `*` for all), instead of `NO_PROXY`.
    pub fn no_proxy(mut self, hosts: impl Into<String>) -> Self {
        self.no_proxy = Some(hosts.into());
        self
    }

    /// Reads the environment variables this transport honours
    /// (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, in upper or
    /// lower case, `SSL_CERT_FILE` and `NODE_EXTRA_CA_CERTS`) from `vars` instead of the process
    /// environment. Values are never shown in `Debug`.
    pub fn environment<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.env = Env::Map(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }
}

/// A connection from [`ProxyConnector`]: the stream (TCP, or TLS to an
/// `https://` proxy), and whether requests on it go to a forwarding proxy
/// (absolute-form URIs).
#[derive(Debug)]
pub(crate) struct ProxiedIo {
    io: TokioIo<ProxyStream>,
    /// The proxy this connection goes through, if any.
    pub(crate) proxy: Option<String>,
    /// Whether it forwards plain `http` requests (not a tunnel).
    forwarding: bool,
}

impl Connection for ProxiedIo {
    fn connected(&self) -> Connected {
        match self.io.inner() {
            ProxyStream::Tcp(tcp) => tcp.connected(),
            ProxyStream::Tls(_) => Connected::new(),
        }
        .proxy(self.forwarding)
    }
}

impl Read for ProxiedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for ProxiedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Dials the server directly, or its proxy: a `CONNECT` tunnel for
/// `https`, a plain connection to a forwarding proxy for `http`.
#[derive(Debug, Clone)]
pub(crate) struct ProxyConnector {
    pub(crate) http: HttpConnector<Resolver>,
    pub(crate) proxies: Proxies,
    /// TLS to `https://` proxies.
    pub(crate) proxy_tls: Arc<rustls::ClientConfig>,
}

type BoxError = Box<dyn StdError + Send + Sync>;
type Connecting = Pin<Box<dyn Future<Output = Result<ProxiedIo, BoxError>> + Send>>;

impl Service<Uri> for ProxyConnector {
    type Response = ProxiedIo;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Service::<Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Connecting {
        let mut http = self.http.clone();
        let intercept = self.proxies.intercept(&dst);
        let proxy_tls = self.proxy_tls.clone();
        Box::pin(async move {
            let Some(intercept) = intercept else {
                let io = http.call(dst).await?;
                return Ok(ProxiedIo {
                    io: TokioIo::new(ProxyStream::Tcp(io.into_inner())),
                    proxy: None,
                    forwarding: false,
                });
            };
            let name = proxy_name(&intercept);
            let proxy_uri = intercept.uri().clone();
            let tcp = http.call(proxy_uri.clone()).await?.into_inner();
            let stream = if proxy_uri.scheme_str() == Some("https") {
                let host = proxy_uri.host().unwrap_or_default();
                crate::proxy_stream::connect_tls(tcp, host, proxy_tls).await?
            } else {
                ProxyStream::Tcp(tcp)
            };
            if dst.scheme_str() == Some("https") {
                let stream = tunnel(stream, &dst, intercept.basic_auth(), &name).await?;
                tracing::debug!(proxy = %name, "tunnel open");
                Ok(ProxiedIo {
                    io: TokioIo::new(stream),
                    proxy: Some(name),
                    forwarding: false,
                })
            } else {
                Ok(ProxiedIo {
                    io: TokioIo::new(stream),
                    proxy: Some(name),
                    forwarding: true,
                })
            }
        })
    }
}

/// The largest proxy answer to `CONNECT` read.
const MAX_TUNNEL_ANSWER: usize = 8 * 1024;

/// Why a proxy did not open a tunnel. (hyper-util's `Tunnel` does the same
/// job, but its error type is not public, so that a 407 could not be told
/// from a 502 but by its message; and it keeps no status code.)
#[derive(Debug, thiserror::Error)]
pub(crate) enum TunnelError {
    /// The proxy answered `CONNECT` with this status.
    #[error("the proxy {proxy} answered CONNECT with {status}")]
    Status { proxy: String, status: u16 },
    /// The proxy closed the connection, or sent something that is not an
    /// HTTP answer.
    #[error("the proxy {proxy} did not answer CONNECT properly: {reason}")]
    Broken { proxy: String, reason: &'static str },
    /// Talking to the proxy failed.
    #[error("i/o error with the proxy {proxy}")]
    Io {
        proxy: String,
        #[source]
        source: std::io::Error,
    },
}

impl TunnelError {
    /// Whether trying again cannot help (credentials wanted or refused, a
    /// destination not allowed: any 4xx).
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(self, TunnelError::Status { status, .. } if (400..500).contains(status))
    }
}

/// Asks the proxy on `stream` for a tunnel to `dst` (`CONNECT host:port`),
/// with `Proxy-Authorization` when the proxy URL carried credentials.
async fn tunnel(
    mut stream: ProxyStream,
    dst: &Uri,
    auth: Option<&HeaderValue>,
    proxy: &str,
) -> Result<ProxyStream, TunnelError> {
    let io = |source| TunnelError::Io {
        proxy: proxy.to_owned(),
        source,
    };
    let broken = |reason| TunnelError::Broken {
        proxy: proxy.to_owned(),
        reason,
    };
    let host = dst.host().ok_or_else(|| broken("no destination host"))?;
    let port = dst.port_u16().unwrap_or(443);
    // An IPv6 literal keeps its brackets in `host()`.
    let mut request =
        format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n").into_bytes();
    if let Some(auth) = auth {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(auth.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    stream.write_all(&request).await.map_err(io)?;
    // Read the answer's head only (up to the blank line), a byte at a time
    // after the first read, so that nothing of the tunnel is consumed: the
    // proxy sends nothing more before we speak TLS.
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_TUNNEL_ANSWER {
            return Err(broken("answer too long"));
        }
        let byte = match stream.read_u8().await {
            Ok(byte) => byte,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(broken("closed the connection"))
            }
            Err(e) => return Err(io(e)),
        };
        head.push(byte);
    }
    let status = status_of(&head).ok_or_else(|| broken("not an HTTP answer"))?;
    if (200..300).contains(&status) {
        Ok(stream)
    } else {
        Err(TunnelError::Status {
            proxy: proxy.to_owned(),
            status,
        })
    }
}

/// The status code of an HTTP/1.x answer's head.
fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::Map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn via(p: &Proxies, url: &str) -> Option<String> {
        let uri: Uri = url.parse().expect("uri");
        p.intercept(&uri).map(|i| proxy_name(&i))
    }

    #[test]
    fn the_environment_is_read_the_curl_way() {
        let e = env(&[
            ("https_proxy", "http://user:secret@127.0.0.1:3128"),
            ("HTTP_PROXY", "127.0.0.2:8080"),
            ("no_proxy", "internal.example, .corp.example 10.0.0.0/8"),
        ]);
        let p = Proxies::new(&ProxyOption::FromEnv, None, &e).expect("valid");
        assert_eq!(
            via(&p, "https://mcp.example.com/mcp").as_deref(),
            Some("http://127.0.0.1:3128"),
            "lower case is read, credentials are not shown"
        );
        assert_eq!(
            via(&p, "http://mcp.example.com/mcp").as_deref(),
            Some("http://127.0.0.2:8080"),
            "no scheme means http"
        );
        for direct in [
            "https://internal.example/mcp",
            "https://a.internal.example/mcp",
            "https://x.corp.example/mcp",
            "https://10.1.2.3/mcp",
        ] {
            assert_eq!(via(&p, direct), None, "{direct} is in NO_PROXY");
        }
        assert!(via(&p, "https://notinternal.example/mcp").is_some());
        let debug = format!("{p:?} {e:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn all_proxy_is_the_fallback_and_settings_override_the_environment() {
        let e = env(&[("ALL_PROXY", "http://127.0.0.9:1"), ("NO_PROXY", "*")]);
        let p = Proxies::new(&ProxyOption::FromEnv, Some(""), &e).expect("valid");
        assert_eq!(
            via(&p, "https://x.example/").as_deref(),
            Some("http://127.0.0.9:1")
        );
        let p = Proxies::new(&ProxyOption::FromEnv, None, &e).expect("valid");
        assert_eq!(via(&p, "https://x.example/"), None, "NO_PROXY=*");
        let p = Proxies::new(&ProxyOption::Url("127.0.0.5:9".into()), Some(""), &e).expect("ok");
        assert_eq!(
            via(&p, "http://x.example/").as_deref(),
            Some("http://127.0.0.5:9")
        );
        let p = Proxies::new(&ProxyOption::Disabled, None, &e).expect("valid");
        assert_eq!(via(&p, "https://x.example/"), None);
        assert_eq!(
            via(
                &Proxies::new(&ProxyOption::FromEnv, None, &env(&[])).expect("ok"),
                "https://x.example/"
            ),
            None,
            "no variables, no proxy"
        );
    }

    #[test]
    fn status_lines_are_read_strictly() {
        assert_eq!(
            status_of(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            Some(200)
        );
        assert_eq!(
            status_of(b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n"),
            Some(407)
        );
        assert_eq!(status_of(b"HTTP/1.1 200\r\n\r\n"), Some(200));
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 20 x\r\n\r\n",
            b"HTTP/1.1 abc\r\n\r\n",
            b"",
        ] {
            assert_eq!(status_of(bad), None);
        }
        let refused = TunnelError::Status {
            proxy: "p".into(),
            status: 407,
        };
        assert!(refused.is_refusal());
        assert!(!TunnelError::Status {
            proxy: "p".into(),
            status: 502
        }
        .is_refusal());
    }

    #[test]
    fn unsupported_proxies_are_refused_when_building() {
        for (option, e) in [
            (ProxyOption::Url("socks5://127.0.0.1:1080".into()), env(&[])),
            (ProxyOption::Url("http://".into()), env(&[])),
            (
                ProxyOption::FromEnv,
                env(&[("HTTPS_PROXY", "socks5h://127.0.0.1:1")]),
            ),
        ] {
            let err = Proxies::new(&option, None, &e).expect_err("refused");
            assert!(
                matches!(err, HttpConfigError::InvalidProxy { .. }),
                "{err:?}"
            );
        }
    }
}
