//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): not a
//! public API. Each checks the invariants the transport relies on, so that a
//! violation is a crash the fuzzer reports.

use crate::sse::SseParser;

/// Feeds an SSE parser with event limit `max`, in the
/// chunks the fuzz target cut. Checks: no event's data is over `max`, and
/// the parser keeps going after an oversized event.
pub fn sse<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, max: usize) {
    let max = max.max(1);
    let mut parser = SseParser::new(max);
    for now in chunks {
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
