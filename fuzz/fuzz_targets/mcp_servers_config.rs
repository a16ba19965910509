//! The `mcpServers` reader: any text is a config or an error naming a
//! field, never a panic (durations of any size, any `${…}`).
#![no_main]

use mcp_conn_core::ConnectionConfig;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lookup = |var: &str| (var.len() % 2 == 0).then(|| format!("value-of-{var}"));
    if let Ok(servers) = mcp_conn_pool::parse_config(text, &ConnectionConfig::default(), lookup) {
        for server in servers {
            assert!(
                server.connection.validate().is_ok(),
                "a config that parses is valid"
            );
            let _ = format!("{server:?}");
        }
    }
});
