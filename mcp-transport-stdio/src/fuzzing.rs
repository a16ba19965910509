//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): not a
//! public API. Each checks the invariants the transport relies on, so that a
//! violation is a crash the fuzzer reports.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::codec::{Line, LineCodec};

/// Feeds `data` to a line codec with limit `max`, in chunks of the sizes the
/// first bytes choose, as a pipe would deliver it. Checks: no frame is
/// longer than `max`, the buffer never holds more than `max` plus one
/// chunk, and every byte is accounted for (frames + newlines + what is left).
pub fn line_codec(data: &[u8], max: usize) {
    let max = max.max(1);
    let mut codec = LineCodec::new(max);
    let mut buf = BytesMut::new();
    let (sizes, data) = data.split_at(data.len().min(4));
    let mut rest = data;
    let mut chunk = 0;
    while !rest.is_empty() {
        let size = usize::from(sizes.get(chunk % sizes.len().max(1)).copied().unwrap_or(64)).max(1);
        chunk += 1;
        let (now, later) = rest.split_at(size.min(rest.len()));
        rest = later;
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
