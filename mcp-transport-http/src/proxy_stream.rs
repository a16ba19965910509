//! The stream to a proxy: plain TCP for an `http://` proxy, TLS for an
//! `https://` one (the proxy's certificate checked against the same roots
//! as the servers'; ALPN `http/1.1`, since `CONNECT` and forwarding are
//! HTTP/1.1). A `CONNECT` tunnel to an `https` server then runs the
//! server's own TLS inside it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A connection to a proxy (or, without one, to the server).
#[derive(Debug)]
pub(crate) enum ProxyStream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS to an `https://` proxy.
    Tls(Box<TlsStream<TcpStream>>),
}

/// The TLS settings for `https://` proxies: the servers' roots and client
/// certificate, ALPN `http/1.1` only.
pub(crate) fn proxy_tls(server_tls: &rustls::ClientConfig) -> Arc<rustls::ClientConfig> {
    let mut config = server_tls.clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// TLS to the proxy at `host` over `tcp`.
pub(crate) async fn connect_tls(
    tcp: TcpStream,
    host: &str,
    tls: Arc<rustls::ClientConfig>,
) -> std::io::Result<ProxyStream> {
    // An IPv6 literal comes with its brackets from `Uri::host`.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_owned()).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("proxy host {host:?}: {e}"),
        )
    })?;
    let stream = TlsConnector::from(tls).connect(name, tcp).await?;
    Ok(ProxyStream::Tls(Box::new(stream)))
}

impl AsyncRead for ProxyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ProxyStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            ProxyStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ProxyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ProxyStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            ProxyStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ProxyStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ProxyStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ProxyStream::Tcp(s) => s.is_write_vectored(),
            ProxyStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ProxyStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            ProxyStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ProxyStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            ProxyStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
