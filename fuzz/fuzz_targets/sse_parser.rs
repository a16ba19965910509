//! The SSE parser: any bytes, in any chunks, under a small event limit.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mcp_transport_http::fuzzing::sse(data, 64);
});
