//! Turning what hyper and the server say into [`TransportError`]s, keeping
//! the causes: a failed connect is classified ([`ConnectFailure`]), an HTTP
//! status keeps its `Retry-After`.

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{HeaderMap, RETRY_AFTER};
use mcp_conn_core::{Cause, ConnectFailure, TlsFailure, TransportError};
use rustls::{AlertDescription, CertificateError};

use crate::proxy::TunnelError;

/// The longest `Retry-After` honoured; a server asking for more gets this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How many bytes of an unexpected body an error quotes.
pub(crate) const BODY_START: usize = 200;

/// A failed DNS lookup, as our resolver reports it (so that it can be told
/// apart from other connect failures by type, not by message).
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {host} failed")]
pub(crate) struct DnsError {
    pub(crate) host: String,
    #[source]
    pub(crate) source: io::Error,
}

/// Every error in `e`'s `source()` chain, `e` first, looking inside
/// `io::Error`s that wrap another error (as hyper-rustls and tokio-rustls
/// do, nested: an `io::Error`'s `source()` skips the error it wraps).
fn chain<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut todo = vec![e];
    while let Some(e) = todo.pop() {
        if out.len() > 32 {
            break; // a cycle, or an absurd chain
        }
        out.push(e);
        if let Some(next) = e.source() {
            todo.push(next);
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            todo.push(inner);
        }
    }
    out
}

/// What kind of connect failure `e` is, from the types in its cause chain.
pub(crate) fn classify(e: &(dyn StdError + 'static)) -> ConnectFailure {
    let links = chain(e);
    if links.iter().any(|e| e.is::<DnsError>()) {
        return ConnectFailure::Dns;
    }
    if links.iter().any(|e| e.is::<rustls::Error>()) {
        return ConnectFailure::Tls;
    }
    for e in &links {
        match e.downcast_ref::<TunnelError>() {
            Some(t) if t.is_refusal() => return ConnectFailure::ProxyRefused,
            Some(TunnelError::Status { .. } | TunnelError::Broken { .. }) => {
                return ConnectFailure::Proxy
            }
            _ => {}
        }
    }
    for e in &links {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return ConnectFailure::Refused,
                io::ErrorKind::TimedOut => return ConnectFailure::Timeout,
                _ => {}
            }
        }
    }
    ConnectFailure::Other
}

/// An error of hyper's client: a failed connect is
/// [`TransportError::Connect`], classified, with the error kept as its
/// source; anything else (the connection broke during the exchange) is
/// [`TransportError::Io`], with the error kept inside.
pub(crate) fn client_error(e: hyper_util::client::legacy::Error, target: &str) -> TransportError {
    // A TLS alert may come after the handshake (TLS 1.3: a server that
    // refuses our client certificate says so on the first read).
    if let Some(reason) = tls_failure(&e) {
        return TransportError::Tls {
            reason,
            target: target.to_owned(),
            source: Some(Arc::new(e) as Cause),
        };
    }
    if e.is_connect() {
        let kind = classify(&e);
        return TransportError::connect(kind, target, Some(Arc::new(e) as Cause));
    }
    let kind = chain(&e)
        .iter()
        .find_map(|e| e.downcast_ref::<io::Error>().map(io::Error::kind))
        .unwrap_or(io::ErrorKind::Other);
    TransportError::Io(Arc::new(io::Error::new(kind, e)))
}

/// What failed in TLS, if `e`'s cause chain holds a `rustls` error.
pub(crate) fn tls_failure(e: &(dyn StdError + 'static)) -> Option<TlsFailure> {
    let links = chain(e);
    let Some(tls) = links.iter().find_map(|e| e.downcast_ref::<rustls::Error>()) else {
        return links.iter().find_map(|e| alert_after_h2(*e));
    };
    Some(match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsFailure::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsFailure::NotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::NameMismatch
            }
            CertificateError::Revoked => TlsFailure::Revoked,
            _ => TlsFailure::BadCertificate,
        },
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            TlsFailure::ClientCertificateRequired
        }
        rustls::Error::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::AccessDenied,
        ) => TlsFailure::ClientCertificateRejected,
        _ => TlsFailure::Handshake,
    })
}

/// An alert the server sent after the handshake, on an HTTP/2 connection:
/// `h2` keeps an I/O error's kind and message but not its type, so the
/// `rustls` error survives only as its message (`received fatal alert:
/// CertificateRequired`). Only alerts are read this way (certificate checks
/// happen in the handshake, before `h2`, and keep their type).
fn alert_after_h2(e: &(dyn StdError + 'static)) -> Option<TlsFailure> {
    let io = e.downcast_ref::<io::Error>()?;
    if io.kind() != io::ErrorKind::InvalidData || io.get_ref()?.is::<rustls::Error>() {
        return None;
    }
    let message = io.get_ref()?.to_string();
    let alert = message.strip_prefix("received fatal alert: ")?;
    Some(match alert.trim() {
        "CertificateRequired" => TlsFailure::ClientCertificateRequired,
        "BadCertificate"
        | "UnknownCA"
        | "CertificateUnknown"
        | "CertificateExpired"
        | "CertificateRevoked"
        | "UnsupportedCertificate"
        | "AccessDenied" => TlsFailure::ClientCertificateRejected,
        _ => TlsFailure::Handshake,
    })
}

/// Where a request went, for errors and logs: scheme, host, port and path,
/// never a user name, password or query (which may hold keys).
pub(crate) fn target(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or_default();
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}{}", uri.path()),
        None => format!("{scheme}://{host}{}", uri.path()),
    }
}

/// A body that broke while being read.
pub(crate) fn body_error(e: hyper::Error) -> TransportError {
    let kind = chain(&e)
        .iter()
        .find_map(|e| e.downcast_ref::<io::Error>().map(io::Error::kind))
        .unwrap_or(io::ErrorKind::UnexpectedEof);
    TransportError::Io(Arc::new(io::Error::new(kind, e)))
}

/// The `Retry-After` header as a delay from now (delta-seconds or an HTTP
/// date), capped at [`MAX_RETRY_AFTER`]; `None` when missing or garbage.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    parse_retry_after(value, SystemTime::now())
}

fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Any number of digits: a huge one is capped, not refused.
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// The first [`BODY_START`] bytes of `body`, lossily decoded.
pub(crate) fn body_start(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(BODY_START)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_ignores_garbage() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER),
            "capped"
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(120));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(120))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(120));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        for garbage in ["", "soon", "-5", "1.5", "Mon, 99 Foo 2020"] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
    }

    #[test]
    fn connect_failures_are_classified_by_type() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&refused), ConnectFailure::Refused);
        let timeout = io::Error::new(io::ErrorKind::TimedOut, "connect timeout");
        assert_eq!(classify(&timeout), ConnectFailure::Timeout);
        let tls = io::Error::other(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::General("bad".into()),
        ));
        assert_eq!(classify(&tls), ConnectFailure::Tls, "nested io::Errors");
        assert_eq!(tls_failure(&tls), Some(TlsFailure::Handshake));
        for (error, reason) in [
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                TlsFailure::UnknownIssuer,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                TlsFailure::Expired,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                TlsFailure::NameMismatch,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                TlsFailure::ClientCertificateRequired,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
                TlsFailure::ClientCertificateRejected,
            ),
        ] {
            let wrapped = io::Error::new(io::ErrorKind::InvalidData, error);
            assert_eq!(tls_failure(&wrapped), Some(reason));
        }
        assert_eq!(tls_failure(&io::Error::other("plain")), None);
        // What h2 leaves of a rustls alert: its message.
        let h2 = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired).to_string(),
        );
        assert_eq!(
            tls_failure(&io::Error::other(h2)),
            Some(TlsFailure::ClientCertificateRequired)
        );
        let other = io::Error::new(io::ErrorKind::InvalidData, "received something else");
        assert_eq!(tls_failure(&other), None);
        let status = |status| TunnelError::Status {
            proxy: "http://127.0.0.1:1".into(),
            status,
        };
        assert_eq!(classify(&status(407)), ConnectFailure::ProxyRefused);
        assert_eq!(classify(&status(403)), ConnectFailure::ProxyRefused);
        assert_eq!(classify(&status(502)), ConnectFailure::Proxy);
        let io = TunnelError::Io {
            proxy: "http://127.0.0.1:1".into(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(classify(&io), ConnectFailure::Refused);
        let dns = DnsError {
            host: "x.invalid".into(),
            source: io::Error::other("no such host"),
        };
        assert_eq!(classify(&dns), ConnectFailure::Dns);
        assert_eq!(
            classify(&io::Error::other("something else")),
            ConnectFailure::Other
        );
    }
}
