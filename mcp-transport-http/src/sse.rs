//! A bounded Server-Sent Events parser (the WHATWG event-stream format).

use bytes::{Buf, BytesMut};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Event {
    /// The `event:` field; empty means `message`.
    pub(crate) event: String,
    /// The `data:` lines, joined by `\n`.
    pub(crate) data: String,
    /// The `id:` field, if this event set one.
    pub(crate) id: Option<String>,
    /// The `retry:` field, in milliseconds, if this event set one.
    pub(crate) retry: Option<u64>,
}

/// The event is larger than the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TooLarge {
    pub(crate) size: usize,
}

/// Feeds bytes in, takes events out. Memory stays below about twice the
/// limit whatever the peer sends.
#[derive(Debug)]
pub(crate) struct SseParser {
    buf: BytesMut,
    current: Event,
    /// Bytes of data accumulated in `current`.
    size: usize,
    /// `current` has had a `data:` line (possibly empty).
    has_data: bool,
    max: usize,
    /// A `\r` ended the last line; a following `\n` belongs to it.
    after_cr: bool,
    /// The current event was too large: its lines are dropped until it
    /// ends, and reading goes on with the next one.
    skipping: bool,
}

impl SseParser {
    pub(crate) fn new(max_event_size: usize) -> Self {
        SseParser {
            buf: BytesMut::new(),
            current: Event::default(),
            size: 0,
            has_data: false,
            max: max_event_size.max(1),
            after_cr: false,
            skipping: false,
        }
    }

    /// Whether nothing is buffered: no byte of an event not yet returned.
    pub(crate) fn is_idle(&self) -> bool {
        self.buf.is_empty() && self.current == Event::default()
    }

    /// Adds bytes from the stream.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, if any. Events with no data are skipped
    /// (priming events), but their `id` and `retry` are still reported.
    /// An event over the limit is reported once, as [`TooLarge`], and the
    /// rest of it is dropped: the next call goes on after it.
    pub(crate) fn next_event(&mut self) -> Result<Option<Event>, TooLarge> {
        loop {
            if self.after_cr && self.buf.first() == Some(&b'\n') {
                self.buf.advance(1);
            }
            self.after_cr = false;
            let Some(end) = self.buf.iter().position(|b| *b == b'\n' || *b == b'\r') else {
                if self.skipping {
                    self.buf.clear(); // part of a line of the dropped event
                } else if self.buf.len() > self.max {
                    let size = self.size + self.buf.len();
                    self.buf.clear();
                    return Err(self.too_large(size));
                }
                return Ok(None);
            };
            self.after_cr = self.buf[end] == b'\r';
            let line = self.buf.split_to(end);
            self.buf.advance(1);
            if self.skipping {
                self.skipping = !line.is_empty();
                continue;
            }
            if line.is_empty() {
                let event = std::mem::take(&mut self.current);
                let had_data = std::mem::take(&mut self.has_data);
                self.size = 0;
                if !had_data && event.id.is_none() && event.retry.is_none() {
                    continue;
                }
                return Ok(Some(event));
            }
            let line = String::from_utf8_lossy(&line);
            if line.starts_with(':') {
                continue; // a comment (keep-alive)
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_ref(), ""),
            };
            match field {
                "data" => {
                    self.size += value.len() + 1;
                    if self.size > self.max {
                        return Err(self.too_large(self.size));
                    }
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                "event" => self.current.event = value.to_owned(),
                "id" if !value.contains('\0') => self.current.id = Some(value.to_owned()),
                "retry" => {
                    if let Ok(ms) = value.parse() {
                        self.current.retry = Some(ms);
                    }
                }
                _ => {}
            }
        }
    }
}

impl SseParser {
    /// Drops the current event and skips to its end.
    fn too_large(&mut self, size: usize) -> TooLarge {
        self.current = Event::default();
        self.has_data = false;
        self.size = 0;
        self.skipping = true;
        TooLarge { size }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(max: usize, chunks: &[&str]) -> Vec<Result<Event, TooLarge>> {
        let mut p = SseParser::new(max);
        let mut out = Vec::new();
        for c in chunks {
            p.push(c.as_bytes());
            loop {
                match p.next_event() {
                    Ok(Some(e)) => out.push(Ok(e)),
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Err(e));
                        return out;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn parses_fields_across_chunks_and_line_endings() {
        let got = events(
            1 << 20,
            &[
                ": keep-alive\n\nid: 1\nretry: 500\ndata:\n\n",
                "event: message\r\ndata: {\"a\":",
                "1}\r\nid: 2\r\n\r\ndata: x\rdata: y\r\r",
            ],
        );
        let got: Vec<Event> = got.into_iter().map(|e| e.expect("ok")).collect();
        assert_eq!(
            got[0],
            Event {
                id: Some("1".into()),
                retry: Some(500),
                ..Default::default()
            },
            "a priming event"
        );
        assert_eq!(
            got[1],
            Event {
                event: "message".into(),
                data: "{\"a\":1}".into(),
                id: Some("2".into()),
                retry: None
            }
        );
        assert_eq!(got[2].data, "x\ny");
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn an_oversized_event_is_refused() {
        let big = format!("data: {}\n", "x".repeat(100));
        let got = events(64, &[&big]);
        assert!(matches!(got.last(), Some(Err(TooLarge { .. }))));
        // A never-ending line is refused too.
        let got = events(64, &["data: ", &"y".repeat(100)]);
        assert!(matches!(got.last(), Some(Err(TooLarge { .. }))));
    }

    #[test]
    fn reading_goes_on_after_an_oversized_event() {
        let mut p = SseParser::new(64);
        let big = "z".repeat(100);
        p.push(format!("data: {big}\ndata: {big}\n\ndata: small\n\n").as_bytes());
        assert!(matches!(p.next_event(), Err(TooLarge { size }) if size > 64));
        assert_eq!(
            p.next_event().ok().flatten().map(|e| e.data),
            Some("small".into())
        );
        // An endless line spread over chunks is dropped as it comes.
        p.push(format!("data: {big}").as_bytes());
        assert!(p.next_event().is_err());
        p.push(big.as_bytes());
        assert_eq!(p.next_event().ok().flatten(), None, "still skipping");
        p.push(b"\n\ndata: after\n\n");
        assert_eq!(
            p.next_event().ok().flatten().map(|e| e.data),
            Some("after".into())
        );
    }
}
