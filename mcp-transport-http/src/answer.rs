//! Reading an HTTP answer that is not a reply to route: a refusal (any
//! status but 2xx) as its typed error, a body of an unexpected type, a body
//! read whole within a limit.

use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use mcp_conn_core::TransportError;

use crate::failure;

/// The most of an error body read (its start is quoted in the error).
const ERROR_BODY: usize = 64 * 1024;

/// The error for a refused answer (any status but 2xx), reading the start
/// of its body: 401 is [`TransportError::Unauthorized`] with the challenge,
/// anything else [`TransportError::Http`] with `Retry-After` (429, 503).
pub(crate) async fn refused(resp: Response<Incoming>) -> TransportError {
    let (status, headers, body) = split(resp).await;
    status_error(status, &headers, &body)
}

pub(crate) async fn split(resp: Response<Incoming>) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let (parts, body) = resp.into_parts();
    let body = read_at_most(body, ERROR_BODY).await;
    (parts.status, parts.headers, body)
}

pub(crate) fn status_error(
    status: StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
) -> TransportError {
    if status == StatusCode::UNAUTHORIZED {
        return TransportError::Unauthorized {
            www_authenticate: www_authenticate(headers),
        };
    }
    TransportError::Http {
        status: status.as_u16(),
        body: failure::body_start(body),
        retry_after: failure::retry_after(headers),
    }
}

pub(crate) fn www_authenticate(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A reply whose content type is neither JSON nor an event stream:
/// [`TransportError::UnexpectedContent`] with the start of its body.
pub(crate) async fn unexpected(resp: Response<Incoming>) -> TransportError {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let body = read_at_most(resp.into_body(), failure::BODY_START).await;
    TransportError::UnexpectedContent {
        status,
        content_type,
        body_start: failure::body_start(&body),
    }
}

/// Reads up to `limit` bytes of a body, ignoring the rest and any error.
pub(crate) async fn read_at_most(mut body: Incoming, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = limit - out.len();
                    out.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            _ => break,
        }
    }
    out
}

/// Reads a whole body of at most `limit` bytes.
pub(crate) async fn read_body(mut body: Incoming, limit: usize) -> Result<Vec<u8>, TransportError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(failure::body_error)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(TransportError::MessageTooLarge {
                    size: out.len() + data.len(),
                    limit,
                });
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}
