//! `mcp-conn tools` and `mcp-conn call`.

use std::time::Duration;

use mcp_conn_core::protocol::{CallToolResult, ContentBlock};
use mcp_conn_core::ConnectionConfig;
use serde_json::{json, Value};

use crate::check::{check_settings, describe, pool_of};
use crate::error::CliError;
use crate::explain;
use crate::hosts::{self, Loaded};
use crate::output;
use crate::{status, CallArgs, Outcome, ToolsArgs};

const SEPARATOR: &str = "__";

pub(crate) async fn tools(args: ToolsArgs) -> Outcome {
    let timeout = args.configs.timeout();
    let loaded = hosts::load(&args.configs.configs, &ConnectionConfig::default())?;
    eprintln!("{}", loaded.describe());
    let pool = pool_of(&loaded, 8, |c| check_settings(c, timeout))?;
    let mut failed: Vec<(String, String)> = Vec::new();
    for (name, outcome) in pool.connect_all().await {
        if let Err(e) = outcome {
            let url = loaded
                .enabled()
                .find(|entry| entry.server.name == name)
                .and_then(|entry| describe(&entry.server.transport).1);
            failed.push((name, explain::error(&e, url.as_deref()).reason));
        }
    }
    let catalog = pool.list_tools().await;
    pool.shutdown().await;
    for (server, e) in &catalog.failed {
        failed.push((server.clone(), format!("listing its tools failed: {e}")));
    }
    if args.json {
        let tools: Vec<Value> = catalog
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.qualified_name,
                    "server": t.server,
                    "tool": t.tool.name,
                    "description": t.tool.description,
                })
            })
            .collect();
        let failed: Vec<Value> = failed
            .iter()
            .map(|(s, e)| json!({"server": s, "error": e}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"tools": tools, "failed": failed}))
                .unwrap_or_default()
        );
    } else {
        let width = output::stdout_width();
        let name_width = catalog
            .tools
            .iter()
            .map(|t| console::measure_text_width(&t.qualified_name))
            .max()
            .unwrap_or(0);
        for t in &catalog.tools {
            let description = output::one_line(t.tool.description.as_deref().unwrap_or(""));
            let line = format!("{:<name_width$}  {description}", t.qualified_name);
            let line = match width {
                Some(w) => output::cut(&line, w),
                None => line,
            };
            println!("{}", line.trim_end());
        }
        for (server, e) in &failed {
            eprintln!("{server}: {e}");
        }
    }
    Ok(status(failed.is_empty()))
}

/// The server of `qualified` among `loaded`'s names: the longest name that
/// `qualified` starts with, followed by the separator.
fn split<'a>(loaded: &Loaded, qualified: &'a str) -> Option<(String, &'a str)> {
    loaded
        .enabled()
        .map(|e| e.server.name.as_str())
        .filter(|name| {
            qualified
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(SEPARATOR) && rest.len() > SEPARATOR.len())
        })
        .max_by_key(|name| name.len())
        .map(|name| (name.to_owned(), &qualified[name.len() + SEPARATOR.len()..]))
}

pub(crate) async fn call(args: CallArgs) -> Outcome {
    let arguments: Value = match &args.arguments {
        None => json!({}),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| CliError::Usage(format!("JSON-ARGUMENTS is not valid JSON: {e}")))?,
    };
    if !arguments.is_object() {
        return Err(CliError::Usage(
            "JSON-ARGUMENTS must be a JSON object, like '{\"text\": \"hi\"}'".into(),
        ));
    }
    let given: Vec<_> = args.config.iter().cloned().collect();
    let mut loaded = hosts::load(&given, &ConnectionConfig::default())?;
    let Some((server, tool)) = split(&loaded, &args.tool) else {
        let names: Vec<_> = loaded.enabled().map(|e| e.server.name.clone()).collect();
        return Err(CliError::Usage(format!(
            "{:?} names no tool of a configured server: write SERVER{SEPARATOR}TOOL (servers: {})",
            args.tool,
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )));
    };
    // Only the server called is started.
    loaded.entries.retain(|e| e.server.name == server);
    let url = loaded
        .entries
        .first()
        .and_then(|e| describe(&e.server.transport).1);
    let timeout = Duration::from_secs_f64(args.timeout);
    let pool = pool_of(&loaded, 1, |c| check_settings(c, timeout))?;
    let outcome = match pool.get(&server) {
        Some(conn) => match conn.connect().await {
            Ok(client) => client
                .call_tool(tool, arguments)
                .await
                .map_err(|e| explain::error(&e, url.as_deref())),
            Err(e) => Err(match pool.authorization_error(&server) {
                Some(why) => explain::Explained {
                    reason: format!("authorization: {why}"),
                    hint: Some(format!("run `mcp-conn auth {server}`")),
                },
                None => explain::error(&e, url.as_deref()),
            }),
        },
        None => Err(explain::Explained {
            reason: format!("no server {server}"),
            hint: None,
        }),
    };
    pool.shutdown().await;
    match outcome {
        Ok(result) => {
            let text = render(&result);
            if result.is_error == Some(true) {
                eprintln!("{server}{SEPARATOR}{tool} reported an error: {text}");
                Ok(status(false))
            } else {
                println!("{text}");
                Ok(status(true))
            }
        }
        Err(e) => {
            eprintln!("mcp-conn: {server}: {}", e.reason);
            if let Some(hint) = e.hint {
                eprintln!("  hint: {hint}");
            }
            Ok(status(false))
        }
    }
}

/// A tool result as text: text content as it is, other content summarised,
/// structured content as JSON when there is nothing else.
fn render(result: &CallToolResult) -> String {
    let mut parts: Vec<String> = result
        .content
        .iter()
        .map(|c| match c {
            ContentBlock::Text { text, .. } => text.clone(),
            ContentBlock::Image {
                data, mime_type, ..
            } => format!("[image {mime_type}, {} bytes]", data.len() / 4 * 3),
            ContentBlock::Audio {
                data, mime_type, ..
            } => format!("[audio {mime_type}, {} bytes]", data.len() / 4 * 3),
            ContentBlock::ResourceLink { uri, .. } => format!("[resource link {uri}]"),
            ContentBlock::Resource { resource, .. } => match &resource.text {
                Some(text) => text.clone(),
                None => format!(
                    "[resource {} ({})]",
                    resource.uri,
                    resource.mime_type.as_deref().unwrap_or("binary")
                ),
            },
            ContentBlock::Unknown(v) => format!(
                "[{} content]",
                v.get("type").and_then(Value::as_str).unwrap_or("unknown")
            ),
        })
        .collect();
    if parts.is_empty() {
        if let Some(s) = &result.structured_content {
            parts.push(serde_json::to_string_pretty(s).unwrap_or_default());
        }
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_kind_of_content() {
        let result: CallToolResult = serde_json::from_value(json!({"content": [
            {"type": "text", "text": "hello"},
            {"type": "image", "data": "AAAA", "mimeType": "image/png"},
            {"type": "resource_link", "uri": "file:///a", "name": "a"},
            {"type": "resource", "resource": {"uri": "file:///b", "blob": "AAAA"}},
            {"type": "video"}
        ]}))
        .expect("a result");
        assert_eq!(
            render(&result),
            "hello\n[image image/png, 3 bytes]\n[resource link file:///a]\n[resource file:///b (binary)]\n[video content]"
        );
        let structured: CallToolResult =
            serde_json::from_value(json!({"content": [], "structuredContent": {"n": 1}}))
                .expect("a result");
        assert_eq!(render(&structured), "{\n  \"n\": 1\n}");
    }
}
