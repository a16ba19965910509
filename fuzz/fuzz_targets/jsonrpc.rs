//! JSON-RPC message parsing: a single message or a batch, from any bytes.
#![no_main]

use mcp_conn_core::jsonrpc::{parse_frame, Frame, Message};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match parse_frame(data) {
        Ok(Frame::Single(msg)) => round_trip(&msg),
        Ok(Frame::Batch(items)) => items.iter().flatten().for_each(round_trip),
        Err(_) => {}
    }
});

/// What was parsed serialises, and parses again to the same message.
fn round_trip(msg: &Message) {
    let bytes = msg.to_vec();
    let again = Message::from_slice(&bytes).expect("a parsed message serialises to a valid one");
    assert_eq!(again.to_vec(), bytes, "serialising is stable");
}
