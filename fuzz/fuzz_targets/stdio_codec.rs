//! The stdio line codec: any bytes, in any chunks, under a small limit.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // A small limit so that oversized lines are common.
    mcp_transport_stdio::fuzzing::line_codec(mcp_conn_fuzz::chunks(data), 64);
});
