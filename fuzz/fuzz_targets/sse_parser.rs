//! The SSE parser: any bytes, in any chunks, under a small event limit.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mcp_transport_http::fuzzing::sse(mcp_conn_fuzz::chunks(data), 64);
});
