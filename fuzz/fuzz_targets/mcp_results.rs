//! The MCP result types a client parses from a server: never a panic,
//! whatever the JSON.
#![no_main]

use mcp_conn_core::protocol::*;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<InitializeResult>(data);
    let _ = serde_json::from_slice::<ListToolsResult>(data);
    if let Ok(result) = serde_json::from_slice::<CallToolResult>(data) {
        let _ = result.text();
        let _ = result.is_error();
    }
    let _ = serde_json::from_slice::<ListResourcesResult>(data);
    let _ = serde_json::from_slice::<ReadResourceResult>(data);
    let _ = serde_json::from_slice::<ListPromptsResult>(data);
    let _ = serde_json::from_slice::<GetPromptResult>(data);
    let _ = serde_json::from_slice::<CompleteResult>(data);
    if let Ok(params) = serde_json::from_slice::<ElicitRequestParams>(data) {
        let _ = params.defaults();
    }
});
