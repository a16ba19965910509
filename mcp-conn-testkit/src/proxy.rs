//! A small HTTP proxy on `127.0.0.1` for transport tests: `CONNECT` tunnels
//! (for `https`) and forwarding of absolute-form requests (for `http`), with
//! optional Basic credentials and a mode that refuses everything. It counts
//! what it did, so a test can assert that traffic went through it. It only
//! dials loopback addresses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// How the proxy behaves.
#[derive(Clone, Default)]
pub struct ProxyBehavior {
    /// Speak TLS to clients with this configuration (an `https://`
    /// proxy); plain TCP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Require `Proxy-Authorization: Basic` with this user and password
    /// (else 407).
    pub credentials: Option<(String, String)>,
    /// Answer every request with this status (e.g. 403) instead.
    pub refuse: Option<u16>,
}

impl std::fmt::Debug for ProxyBehavior {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyBehavior")
            .field("tls", &self.tls.is_some())
            .field("credentials", &self.credentials.as_ref().map(|(u, _)| u))
            .field("refuse", &self.refuse)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Counts {
    /// The target of each connection's first request (`host:port` for a
    /// tunnel, the absolute URI for forwarding).
    targets: std::sync::Mutex<Vec<String>>,
    tunnels: AtomicU64,
    forwarded: AtomicU64,
    refused: AtomicU64,
}

/// A running proxy; dropping it stops it and closes its connections.
#[derive(Debug)]
pub struct TestProxy {
    addr: SocketAddr,
    scheme: &'static str,
    counts: Arc<Counts>,
    tasks: JoinSet<()>,
}

const MAX_HEAD: usize = 16 * 1024;

impl TestProxy {
    /// Starts a proxy on a free port of 127.0.0.1.
    pub async fn start(behavior: ProxyBehavior) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let mut tasks = JoinSet::new();
        let c = counts.clone();
        let scheme = if behavior.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let behavior = Arc::new(behavior);
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let (behavior, counts) = (behavior.clone(), c.clone());
                        connections.spawn(async move {
                            match behavior.tls.clone() {
                                None => serve(stream, behavior, counts).await,
                                Some(tls) => {
                                    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                                    if let Ok(stream) = acceptor.accept(stream).await {
                                        serve(stream, behavior, counts).await;
                                    }
                                }
                            }
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(TestProxy {
            addr,
            scheme,
            counts,
            tasks,
        })
    }

    /// The proxy's URL, with `user:password@` when given.
    pub fn url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => {
                format!("{}://{user}:{password}@{}", self.scheme, self.addr)
            }
            None => format!("{}://{}", self.scheme, self.addr),
        }
    }

    /// The target of each proxied connection's first request: `host:port`
    /// for a tunnel, the absolute URI for a forwarded request.
    pub fn targets(&self) -> Vec<String> {
        self.counts
            .targets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many `CONNECT` tunnels it opened.
    pub fn tunnels(&self) -> u64 {
        self.counts.tunnels.load(Ordering::SeqCst)
    }

    /// How many connections it forwarded plain requests on.
    pub fn forwarded(&self) -> u64 {
        self.counts.forwarded.load(Ordering::SeqCst)
    }

    /// How many requests it refused (407 or the `refuse` status).
    pub fn refused(&self) -> u64 {
        self.counts.refused.load(Ordering::SeqCst)
    }

    /// Stops accepting and closes every connection.
    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

/// Reads a request head (up to the blank line), a byte at a time so that
/// nothing after it is consumed.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return None;
        }
        head.push(stream.read_u8().await.ok()?);
    }
    Some(head)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `host:port` of a loopback target, or `None` for anything else.
fn loopback(authority: &str) -> Option<SocketAddr> {
    let addr: SocketAddr = authority.parse().ok()?;
    addr.ip().is_loopback().then_some(addr)
}

async fn answer<S: AsyncWrite + Unpin>(stream: &mut S, status: u16, extra: &str) {
    let reply = format!("HTTP/1.1 {status} Test Proxy\r\n{extra}Content-Length: 0\r\n\r\n");
    let _ = stream.write_all(reply.as_bytes()).await;
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    behavior: Arc<ProxyBehavior>,
    counts: Arc<Counts>,
) {
    let Some(head) = read_head(&mut client).await else {
        return;
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut request_line = text.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (
        request_line.next().unwrap_or_default(),
        request_line.next().unwrap_or_default(),
    );
    if let Some(status) = behavior.refuse {
        counts.refused.fetch_add(1, Ordering::SeqCst);
        return answer(&mut client, status, "").await;
    }
    if let Some((user, password)) = &behavior.credentials {
        let expected =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let given = header(&text, "proxy-authorization");
        if given != Some(format!("Basic {expected}").as_str()) {
            counts.refused.fetch_add(1, Ordering::SeqCst);
            return answer(
                &mut client,
                407,
                "Proxy-Authenticate: Basic realm=\"test\"\r\n",
            )
            .await;
        }
    }
    counts
        .targets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(target.to_owned());
    if method == "CONNECT" {
        let Some(addr) = loopback(target) else {
            return answer(&mut client, 403, "").await;
        };
        let Ok(mut upstream) = TcpStream::connect(addr).await else {
            return answer(&mut client, 502, "").await;
        };
        counts.tunnels.fetch_add(1, Ordering::SeqCst);
        answer(&mut client, 200, "").await;
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }
    // Forwarding: `GET http://127.0.0.1:port/path HTTP/1.1`. The origin gets
    // the head as it came (hyper accepts absolute-form), then the bytes.
    let authority = target
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    let Some(addr) = loopback(authority) else {
        return answer(&mut client, 400, "").await;
    };
    let Ok(mut upstream) = TcpStream::connect(addr).await else {
        return answer(&mut client, 502, "").await;
    };
    counts.forwarded.fetch_add(1, Ordering::SeqCst);
    if upstream.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
