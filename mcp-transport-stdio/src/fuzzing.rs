//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): not a
//! public API. Each checks the invariants the transport relies on, so that a
//! violation is a crash the fuzzer reports.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::codec::{Line, LineCodec};

/// Feeds a line codec with limit `max`, in the chunks the fuzz target cut,
/// as a pipe would deliver them. Checks: no frame is
/// longer than `max`, the buffer never holds more than `max` plus one
/// chunk (a chunk is at most 255 bytes).
pub fn line_codec<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, max: usize) {
    let max = max.max(1);
    let mut codec = LineCodec::new(max);
    let mut buf = BytesMut::new();
    for now in chunks {
        buf.extend_from_slice(now);
        while let Ok(Some(line)) = codec.decode(&mut buf) {
            if let Line::Text(text) = line {
                assert!(
                    text.len() <= max,
                    "a frame of {} bytes passed a limit of {max}",
                    text.len()
                );
                assert!(!text.contains(&b'\n'), "a frame holds a newline");
            }
        }
        assert!(
            buf.len() <= max + 256,
            "the buffer grew to {} bytes (limit {max})",
            buf.len()
        );
    }
    while let Ok(Some(_)) = codec.decode_eof(&mut buf) {}
}
