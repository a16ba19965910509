//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): not a
//! public API. Each checks the invariants the transport relies on, so that a
//! violation is a crash the fuzzer reports.

use crate::sse::SseParser;

/// Feeds `data` to an SSE parser with event limit `max`, in chunks of the
/// sizes the first bytes choose. Checks: no event's data is over `max`, and
/// the parser keeps going after an oversized event.
pub fn sse(data: &[u8], max: usize) {
    let max = max.max(1);
    let mut parser = SseParser::new(max);
    let (sizes, data) = data.split_at(data.len().min(4));
    let mut rest = data;
    let mut chunk = 0;
    while !rest.is_empty() {
        let size = usize::from(sizes.get(chunk % sizes.len().max(1)).copied().unwrap_or(64)).max(1);
        chunk += 1;
        let (now, later) = rest.split_at(size.min(rest.len()));
        rest = later;
        parser.push(now);
        loop {
            match parser.next_event() {
                Ok(Some(event)) => {
                    assert!(
                        event.data.len() <= max,
                        "an event of {} bytes passed a limit of {max}",
                        event.data.len()
                    );
                }
                Ok(None) => break,
                Err(too_large) => assert!(
                    too_large.size > max,
                    "refused an event of {} bytes under the limit {max}",
                    too_large.size
                ),
            }
        }
    }
}
