//! A failure as a person reads it: a short reason and a hint to act on.

use mcp_conn_core::{ConnectFailure, Error, TlsFailure, TransportError};

/// Why a server failed, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Explained {
    pub(crate) reason: String,
    pub(crate) hint: Option<String>,
}

fn hint(reason: impl Into<String>, hint: impl Into<String>) -> Explained {
    Explained {
        reason: reason.into(),
        hint: Some(hint.into()),
    }
}

fn plain(reason: impl Into<String>) -> Explained {
    Explained {
        reason: reason.into(),
        hint: None,
    }
}

/// Explains a connection error (`url` is the server's URL, for HTTP).
pub(crate) fn error(e: &Error, url: Option<&str>) -> Explained {
    match e {
        Error::Connect { source, .. } | Error::ConnectionLost { reason: source, .. } => {
            transport(source, url)
        }
        Error::Timeout {
            operation, after, ..
        } => hint(
            format!("no answer to {operation} within {:.0} s", after.as_secs_f64()),
            "the server may be slow to start (npx and uvx download it on first run): try --timeout 60",
        ),
        Error::UnsupportedVersion { offered, .. } => hint(
            format!("the server chose protocol version {offered:?}, which mcp-conn does not speak"),
            "update the server (or mcp-conn)",
        ),
        Error::Protocol { message, .. } => hint(
            format!("protocol violation: {message}"),
            "a server must write only MCP messages to stdout (logs go to stderr)",
        ),
        Error::Rpc { method, error, .. } => plain(format!("{method} failed: {error}")),
        Error::Transport { method, source, .. } => plain(format!("{method} failed: {source}")),
        Error::Backoff { cause: Some(c), .. } => error(c, url),
        other => plain(without_prefix(&other.to_string())),
    }
}

/// Explains a transport failure.
pub(crate) fn transport(t: &TransportError, url: Option<&str>) -> Explained {
    let at = url.map(|u| format!(" at {u}")).unwrap_or_default();
    match t {
        TransportError::NotFound { program } => {
            let base = program.rsplit('/').next().unwrap_or(program);
            let what = match base {
                "npx" | "node" | "npm" | "pnpm" | "bunx" => "is Node.js installed?",
                "uvx" | "uv" => "is uv installed?",
                "python" | "python3" | "pip" | "pipx" => "is Python installed?",
                "docker" | "podman" => "is Docker installed and on PATH?",
                "deno" => "is Deno installed?",
                _ => "is it installed, and on PATH (or given as a full path)?",
            };
            hint(format!("program not found: {program}"), what)
        }
        TransportError::Exited {
            status,
            stderr_tail,
        } => {
            let last: Vec<&str> = stderr_tail
                .iter()
                .rev()
                .map(String::as_str)
                .filter(|l| !l.trim().is_empty())
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if last.is_empty() {
                hint(
                    format!("the server exited ({status})"),
                    "it wrote nothing to stderr: run its command by hand to see why",
                )
            } else {
                hint(
                    format!("the server exited ({status})"),
                    format!("its last stderr lines:\n{}", last.join("\n")),
                )
            }
        }
        t if t.is_unauthorized() => hint(
            "401: this server needs authorization",
            "for OAuth, add \"auth\": \"oauth\" to its entry and run `mcp-conn auth NAME`; or put a token in its \"headers\" (\"Authorization\": \"Bearer ${TOKEN}\")",
        ),
        t if t.http_status() == Some(403) => hint(
            "403: forbidden",
            "the credentials are not allowed to use this server",
        ),
        t if t.http_status() == Some(404) => hint(
            format!("404: nothing{at}"),
            "check the URL's path (Streamable HTTP servers often use /mcp, legacy SSE ones /sse)",
        ),
        t if t.http_status() == Some(405) => hint(
            format!("405: method not allowed{at}"),
            "it may be a legacy HTTP+SSE server: set \"type\": \"sse\"",
        ),
        t if t.is_refused() => hint(
            format!("connection refused{at}"),
            "nothing listens there: is the server running?",
        ),
        t if t.is_proxy() => hint(
            format!("the proxy would not connect us{at}: {t}"),
            "check \"proxy\" (or HTTPS_PROXY/HTTP_PROXY), its credentials, and NO_PROXY",
        ),
        t if t.is_tls() => {
            let fix = match t.tls_failure() {
                Some(TlsFailure::UnknownIssuer) => {
                    "a private authority signed it: give its certificate as \"caFile\" (or SSL_CERT_FILE / NODE_EXTRA_CA_CERTS)"
                }
                Some(TlsFailure::NameMismatch) => {
                    "the certificate is for another host name: check the URL's host"
                }
                Some(TlsFailure::Expired | TlsFailure::NotYetValid) => {
                    "the server's certificate is out of date (or this machine's clock is wrong)"
                }
                Some(
                    TlsFailure::ClientCertificateRequired | TlsFailure::ClientCertificateRejected,
                ) => "this server wants a client certificate: set \"clientCert\" and \"clientKey\"",
                _ => "check the certificate (or use http:// for a local server)",
            };
            hint(format!("TLS failed{at}: {t}"), fix)
        }
        TransportError::Connect {
            kind: ConnectFailure::Dns,
            target,
            ..
        } => hint(
            format!("host not found: {target}"),
            "check the URL's host name",
        ),
        TransportError::Spawn { program, source } => hint(
            format!("could not start {program}: {source}"),
            "check that it is an executable file",
        ),
        TransportError::Eof => hint(
            "the server closed the connection",
            "run its command by hand: it may need arguments, or have crashed",
        ),
        other => plain(other.to_string()),
    }
}

/// `connection `x`: connect failed: why` → `connect failed: why`.
fn without_prefix(message: &str) -> String {
    match message.strip_prefix("connection `") {
        Some(rest) => rest
            .find("`: ")
            .map_or(message, |i| &rest[i + 3..])
            .to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_hints_a_person_can_act_on() {
        let c: Arc<str> = Arc::from("x");
        let nf = Error::Connect {
            connection: c.clone(),
            source: TransportError::NotFound {
                program: "npx".into(),
            },
        };
        assert_eq!(
            error(&nf, None),
            hint("program not found: npx", "is Node.js installed?")
        );
        let exited = Error::Connect {
            connection: c.clone(),
            source: TransportError::Exited {
                status: "status 1".into(),
                stderr_tail: vec!["a".into(), "b".into(), "".into(), "c".into(), "d".into()],
            },
        };
        let e = error(&exited, None);
        assert_eq!(e.reason, "the server exited (status 1)");
        assert_eq!(e.hint.as_deref(), Some("its last stderr lines:\nb\nc\nd"));
        let unauthorized = Error::Connect {
            connection: c,
            source: TransportError::Unauthorized {
                www_authenticate: None,
            },
        };
        assert_eq!(
            error(&unauthorized, Some("http://h/mcp")).reason,
            "401: this server needs authorization"
        );
        assert_eq!(
            without_prefix("connection `x`: connect failed: boom"),
            "connect failed: boom"
        );
    }
}
