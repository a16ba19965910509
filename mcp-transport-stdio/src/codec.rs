//! Newline-delimited framing with a size bound.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// One frame read from the server's stdout.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A complete line, without its `\n` (and without a trailing `\r`).
    Text(BytesMut),
    /// A line longer than the limit; it was discarded up to its newline.
    Oversized { size: usize },
}

/// Splits a byte stream on `\n`. A line longer than `max` is reported as
/// [`Line::Oversized`] and skipped to its end, so it never costs more than
/// `max` bytes of memory and never ends the stream.
#[derive(Debug)]
pub(crate) struct LineCodec {
    max: usize,
    /// Where to resume the search for `\n` in the buffer.
    scanned: usize,
    /// `Some(n)` while skipping an oversized line of which `n` bytes were seen.
    discarding: Option<usize>,
}

impl LineCodec {
    pub(crate) fn new(max: usize) -> Self {
        LineCodec {
            max: max.max(1),
            scanned: 0,
            discarding: None,
        }
    }
}

impl Decoder for LineCodec {
    type Item = Line;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, Self::Error> {
        loop {
            if let Some(seen) = self.discarding {
                return Ok(match buf.iter().position(|b| *b == b'\n') {
                    Some(at) => {
                        buf.advance(at + 1);
                        self.discarding = None;
                        Some(Line::Oversized { size: seen + at })
                    }
                    None => {
                        self.discarding = Some(seen + buf.len());
                        buf.clear();
                        None
                    }
                });
            }
            match buf[self.scanned..].iter().position(|b| *b == b'\n') {
                Some(offset) => {
                    let end = self.scanned + offset;
                    self.scanned = 0;
                    if end > self.max {
                        buf.advance(end + 1);
                        return Ok(Some(Line::Oversized { size: end }));
                    }
                    let mut line = buf.split_to(end + 1);
                    line.truncate(end);
                    if line.last() == Some(&b'\r') {
                        line.truncate(end - 1);
                    }
                    return Ok(Some(Line::Text(line)));
                }
                None if buf.len() > self.max => {
                    self.discarding = Some(0);
                    self.scanned = 0;
                }
                None => {
                    self.scanned = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, Self::Error> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        if let Some(seen) = self.discarding.take() {
            buf.clear();
            return Ok(Some(Line::Oversized { size: seen }));
        }
        self.scanned = 0;
        if buf.is_empty() {
            Ok(None)
        } else {
            // A last line without its newline: take it as it is.
            let mut line = buf.split();
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            Ok(Some(Line::Text(line)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut LineCodec, chunks: &[&[u8]]) -> Vec<Line> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(line) = codec.decode(&mut buf).expect("decode") {
                out.push(line);
            }
        }
        while let Some(line) = codec.decode_eof(&mut buf).expect("eof") {
            out.push(line);
        }
        out
    }

    fn text(s: &str) -> Line {
        Line::Text(BytesMut::from(s))
    }

    #[test]
    fn splits_lines_across_chunks_and_strips_cr() {
        let mut c = LineCodec::new(100);
        let got = decode_all(&mut c, &[b"{\"a\":1}\r\n{\"b\"", b":2}\n", b"\n", b"tail"]);
        assert_eq!(
            got,
            vec![text("{\"a\":1}"), text("{\"b\":2}"), text(""), text("tail")]
        );
    }

    #[test]
    fn an_oversized_line_is_reported_and_skipped() {
        let mut c = LineCodec::new(8);
        let long = [b'x'; 30];
        let got = decode_all(&mut c, &[b"ok\n", &long[..10], &long[10..], b"\nnext\n"]);
        assert_eq!(
            got,
            vec![text("ok"), Line::Oversized { size: 30 }, text("next")]
        );
        // Whole oversized line in one chunk.
        let mut c = LineCodec::new(4);
        let got = decode_all(&mut c, &[b"123456789\nab\n"]);
        assert_eq!(got, vec![Line::Oversized { size: 9 }, text("ab")]);
        // Exactly at the limit is fine.
        let mut c = LineCodec::new(4);
        assert_eq!(decode_all(&mut c, &[b"1234\n"]), vec![text("1234")]);
    }

    #[test]
    fn oversized_at_eof_is_reported() {
        let mut c = LineCodec::new(4);
        assert_eq!(
            decode_all(&mut c, &[b"0123456789"]),
            vec![Line::Oversized { size: 10 }]
        );
    }
}
