//! `mcp-conn auth SERVER`: the OAuth consent for one remote server, run
//! once so that the other commands (which never ask) can use it.

use std::time::Duration;

use mcp_conn_core::ConnectionConfig;
use mcp_conn_pool::auth::HttpAuth;
use mcp_conn_pool::{ConnectionPool, PoolConfig, ServerTransport};

use crate::error::CliError;
use crate::explain;
use crate::hosts;
use crate::{status, AuthArgs, Outcome};

pub(crate) async fn run(args: AuthArgs) -> Outcome {
    let given: Vec<_> = args.config.iter().cloned().collect();
    let loaded = hosts::load(&given, &ConnectionConfig::default())?;
    let Some(entry) = loaded.entries.iter().find(|e| e.server.name == args.server) else {
        let names: Vec<_> = loaded
            .entries
            .iter()
            .map(|e| e.server.name.as_str())
            .collect();
        return Err(CliError::Usage(format!(
            "no server {:?} in the config (servers: {})",
            args.server,
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )));
    };
    let mut server = entry.server.clone();
    let url = match &mut server.transport {
        ServerTransport::Http { url, auth, .. } => {
            // A server with no `"auth"` entry is authorized as if it said
            // `"auth": "oauth"` (discovery and dynamic registration).
            auth.get_or_insert_with(HttpAuth::default);
            url.clone()
        }
        _ => {
            return Err(CliError::Usage(format!(
                "{} is not a remote (HTTP) server: there is nothing to authorize",
                args.server
            )))
        }
    };
    let timeout = Duration::from_secs_f64(args.timeout);
    server.disabled = false;
    server.connection = ConnectionConfig {
        connection_timeout: timeout,
        auto_reconnect: false,
        ..server.connection
    };
    let pool = ConnectionPool::with_config(PoolConfig {
        ask_for_consent: true,
        shutdown_timeout: Duration::from_secs(5),
        ..PoolConfig::default()
    });
    let conn = pool.insert_server(server).map_err(|e| match e {
        mcp_conn_pool::Error::Config(source) => CliError::Config {
            file: loaded.sources[entry.source].path.clone(),
            source,
        },
        other => CliError::Usage(other.to_string()),
    })?;
    eprintln!("Authorizing {} ({url})", args.server);
    let outcome = conn.connect().await;
    let tools = match &outcome {
        Ok(client) => client.list_tools().await.map(|t| t.len()).ok(),
        Err(_) => None,
    };
    let failure = outcome
        .as_ref()
        .err()
        .map(|e| match pool.authorization_error(&args.server) {
            Some(why) => format!("authorization failed: {why}"),
            None => explain::error(e, Some(&url)).reason,
        });
    pool.shutdown().await;
    match failure {
        None => {
            let tools = tools.map_or_else(String::new, |n| format!("; {n} tools"));
            println!(
                "{}: authorized and connected{tools}. The tokens are stored; `mcp-conn check` will use them.",
                args.server
            );
            Ok(status(true))
        }
        Some(reason) => {
            eprintln!("mcp-conn: {}: {reason}", args.server);
            Ok(status(false))
        }
    }
}
