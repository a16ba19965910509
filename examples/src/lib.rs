//! Runnable programs for mcp-conn live in `examples/` of this crate: `cargo run -p examples --example <name>`.
