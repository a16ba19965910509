//! Getting the user's consent: given the authorization URL, return the
//! redirect URL that carries the code. [`BrowserConsent`] for people,
//! [`HeadlessConsent`] for servers that consent without a person.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use url::Url;

use super::http::OAuthHttp;
use super::OAuthError;

/// The step that asks the user to agree.
#[async_trait]
pub trait Consent: Send + Sync + 'static {
    /// The redirect URI the authorization server sends the user back to
    /// (registered with the server, sent in the authorization request).
    async fn redirect_uri(&self) -> Result<String, OAuthError>;

    /// Shows `authorization_url` to the user and returns the URL the
    /// authorization server redirected to (with `code`, `state`, `iss`, or
    /// `error`). The caller bounds the wait.
    async fn authorize(&self, authorization_url: &Url) -> Result<Url, OAuthError>;
}

/// Whether `url` is the redirect URI (scheme, host, port and path).
fn is_redirect(url: &Url, redirect_uri: &Url) -> bool {
    url.scheme() == redirect_uri.scheme()
        && url.host_str() == redirect_uri.host_str()
        && url.port_or_known_default() == redirect_uri.port_or_known_default()
        && url.path() == redirect_uri.path()
}

/// Never asks: for checks and background services that must not open a
/// browser or wait for a person. Stored tokens are used and refreshed as
/// usual; when a new consent would be needed, authorization fails with
/// [`OAuthError::ConsentRequired`] before anything is registered.
///
/// ```
/// use mcp_transport_http::oauth::{NoConsent, OAuthProvider};
/// let provider = OAuthProvider::builder("https://mcp.example.com/mcp")
///     .consent(NoConsent)
///     .build()?;
/// # Ok::<(), mcp_transport_http::oauth::OAuthError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoConsent;

#[async_trait]
impl Consent for NoConsent {
    async fn redirect_uri(&self) -> Result<String, OAuthError> {
        Err(OAuthError::ConsentRequired)
    }

    async fn authorize(&self, _authorization_url: &Url) -> Result<Url, OAuthError> {
        Err(OAuthError::ConsentRequired)
    }
}

/// Consent without a person: GETs the authorization URL and follows the
/// authorization server's own redirects until one points at the redirect
/// URI, whose URL is the answer (nothing needs to listen there). For
/// authorization servers that consent automatically: test servers and the
/// conformance suite.
#[derive(Clone)]
pub struct HeadlessConsent {
    redirect_uri: String,
    http: OAuthHttp,
    max_hops: usize,
}

impl fmt::Debug for HeadlessConsent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeadlessConsent")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl HeadlessConsent {
    /// Uses `http://localhost:3333/callback` as the redirect URI.
    pub fn new() -> Self {
        Self::with_redirect_uri("http://localhost:3333/callback")
    }

    /// Uses `redirect_uri`.
    pub fn with_redirect_uri(redirect_uri: impl Into<String>) -> Self {
        HeadlessConsent {
            redirect_uri: redirect_uri.into(),
            http: OAuthHttp::new(Duration::from_secs(30)),
            max_hops: 5,
        }
    }
}

impl Default for HeadlessConsent {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Consent for HeadlessConsent {
    async fn redirect_uri(&self) -> Result<String, OAuthError> {
        Ok(self.redirect_uri.clone())
    }

    async fn authorize(&self, authorization_url: &Url) -> Result<Url, OAuthError> {
        let redirect = Url::parse(&self.redirect_uri)
            .map_err(|e| OAuthError::consent(format!("bad redirect URI: {e}")))?;
        let mut url = authorization_url.clone();
        for _ in 0..self.max_hops {
            let answer = self.http.get_json(&url, &[]).await?;
            if !answer.status.is_redirection() {
                return Err(OAuthError::consent(format!(
                    "the authorization endpoint answered HTTP {} instead of redirecting: it needs a person (use BrowserConsent)",
                    answer.status.as_u16()
                )));
            }
            let location = answer
                .headers
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| OAuthError::consent("a redirect without Location"))?;
            let next = url
                .join(location)
                .map_err(|e| OAuthError::consent(format!("bad Location: {e}")))?;
            if is_redirect(&next, &redirect) {
                return Ok(next);
            }
            if next.origin() != authorization_url.origin() {
                return Err(OAuthError::consent(
                    "the authorization server redirected to another site",
                ));
            }
            url = next;
        }
        Err(OAuthError::consent("too many redirects"))
    }
}

/// Consent in the system browser: opens the authorization URL (and prints
/// it on stderr, so that it can be opened by hand when no browser opens)
/// and waits for the redirect on a loopback port (`127.0.0.1`).
pub struct BrowserConsent {
    port: u16,
    open_browser: bool,
    listener: Mutex<Option<(TcpListener, u16)>>,
}

impl fmt::Debug for BrowserConsent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserConsent")
            .field("port", &self.port)
            .field("open_browser", &self.open_browser)
            .finish_non_exhaustive()
    }
}

impl BrowserConsent {
    /// Listens on `port` (0: any free port, chosen once per process; a
    /// fixed port keeps the registered redirect URI across runs).
    pub fn new(port: u16) -> Self {
        BrowserConsent {
            port,
            open_browser: true,
            listener: Mutex::new(None),
        }
    }

    /// Only prints the URL; does not try to open a browser.
    pub fn print_only(mut self) -> Self {
        self.open_browser = false;
        self
    }

    async fn bound_port(&self) -> Result<u16, OAuthError> {
        let mut guard = self.listener.lock().await;
        if let Some((_, port)) = &*guard {
            return Ok(*port);
        }
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .map_err(|e| {
                OAuthError::consent(format!("cannot listen on 127.0.0.1:{}: {e}", self.port))
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| OAuthError::consent(e.to_string()))?
            .port();
        *guard = Some((listener, port));
        Ok(port)
    }

    fn open(url: &Url) -> bool {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else if cfg!(windows) {
            "explorer"
        } else {
            "xdg-open"
        };
        // tokio reaps the opener when it exits; it is never waited for.
        tokio::process::Command::new(opener)
            .arg(url.as_str())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
    }
}

/// Reads one request head (at most 8 KiB, within 10 s) and returns its target.
async fn request_target(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()??;
    let head = String::from_utf8_lossy(&buf);
    let line = head.lines().next()?;
    let mut parts = line.split_whitespace();
    (parts.next()? == "GET").then_some(())?;
    parts.next().map(str::to_owned)
}

#[async_trait]
impl Consent for BrowserConsent {
    async fn redirect_uri(&self) -> Result<String, OAuthError> {
        Ok(format!(
            "http://127.0.0.1:{}/callback",
            self.bound_port().await?
        ))
    }

    async fn authorize(&self, authorization_url: &Url) -> Result<Url, OAuthError> {
        let port = self.bound_port().await?;
        let opened = self.open_browser && Self::open(authorization_url);
        if opened {
            eprintln!("Opening your browser to authorize. If it does not open, visit:\n  {authorization_url}");
        } else {
            eprintln!("To authorize, open this URL in a browser:\n  {authorization_url}");
        }
        let guard = self.listener.lock().await;
        let Some((listener, _)) = &*guard else {
            return Err(OAuthError::consent("the loopback listener is gone"));
        };
        loop {
            let (mut stream, _) = listener
                .accept()
                .await
                .map_err(|e| OAuthError::consent(format!("loopback listener: {e}")))?;
            let Some(target) = request_target(&mut stream).await else {
                continue;
            };
            let Ok(url) =
                Url::parse(&format!("http://127.0.0.1:{port}")).and_then(|base| base.join(&target))
            else {
                continue;
            };
            if url.path() != "/callback" {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let body = "<!doctype html><title>Authorized</title><p>You can close this window and return to the application.</p>";
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.write_all(reply.as_bytes()))
                    .await;
            return Ok(url);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn browser_consent_takes_the_redirect_from_the_loopback_port() {
        let consent = BrowserConsent::new(0).print_only();
        let redirect = consent.redirect_uri().await.expect("binds");
        assert!(redirect.starts_with("http://127.0.0.1:"));
        let auth = Url::parse("https://as.example.com/authorize?x=1").expect("valid");
        let waiting = tokio::spawn(async move { consent.authorize(&auth).await });
        let base = Url::parse(&redirect).expect("valid");
        let addr = format!("127.0.0.1:{}", base.port().expect("port"));
        // A stray request first, then the browser's redirect.
        let mut stray = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connects");
        stray
            .write_all(b"GET /favicon.ico HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("writes");
        let mut sink = Vec::new();
        stray.read_to_end(&mut sink).await.expect("reads");
        assert!(sink.starts_with(b"HTTP/1.1 404"));
        let mut browser = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connects");
        browser
            .write_all(b"GET /callback?code=c1&state=s1 HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("writes");
        let mut page = Vec::new();
        browser.read_to_end(&mut page).await.expect("reads");
        assert!(page.starts_with(b"HTTP/1.1 200"));
        let got = waiting.await.expect("joins").expect("redirect");
        assert_eq!(got.query(), Some("code=c1&state=s1"));
    }
}
