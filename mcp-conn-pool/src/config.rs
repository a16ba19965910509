//! The `mcpServers` JSON that desktop MCP hosts use.
//!
//! ```json
//! {
//!   "mcpServers": {
//!     "fs":  { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "${HOME}"],
//!              "env": { "TOKEN": "${env:FS_TOKEN}" }, "cwd": "/tmp" },
//!     "web": { "url": "https://mcp.example.com/mcp", "headers": { "Authorization": "Bearer ${API_KEY}" } },
//!     "old": { "type": "sse", "url": "http://127.0.0.1:3001/sse" },
//!     "off": { "command": "x", "disabled": true },
//!     "slow": { "command": "y", "connection": { "request_timeout": 300, "max_reconnect_attempts": 10 } }
//!   }
//! }
//! ```
//!
//! `type` (or `transport`) is `stdio`, `http` (also `streamable-http`) or
//! `sse`; when absent it is `stdio` for a `command` and `http` for a `url`.
//! `${VAR}` and `${env:VAR}` in any string are replaced by the environment
//! variable. `connection` overrides [`ConnectionConfig`] fields (durations in
//! seconds). Other keys a host adds are ignored.

use std::fmt;
use std::time::Duration;

use mcp_conn_core::{ConnectionConfig, MAX_DURATION};
use serde_json::{Map, Value};

use crate::error::ConfigError;

/// How a configured server is reached.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerTransport {
    /// A child process.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments, `${VAR}` expanded.
        args: Vec<String>,
        /// Its arguments as written, `${VAR}` not expanded: what `Debug`
        /// shows, since an expanded argument may hold a secret
        /// (`--header "Authorization: Bearer ${TOKEN}"`).
        args_as_written: Vec<String>,
        /// Environment variables set for it.
        env: Vec<(String, String)>,
        /// Its working directory.
        cwd: Option<String>,
    },
    /// An HTTP endpoint.
    Http {
        /// The URL.
        url: String,
        /// Headers sent on every request.
        headers: Vec<(String, String)>,
        /// Only the legacy HTTP+SSE transport (`"type": "sse"`).
        legacy_sse: bool,
    },
}

impl fmt::Debug for ServerTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Environment and header values are secrets: names only.
        match self {
            ServerTransport::Stdio {
                command,
                args_as_written,
                env,
                cwd,
                ..
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args_as_written)
                .field("env", &env.iter().map(|(k, _)| k).collect::<Vec<_>>())
                .field("cwd", cwd)
                .finish(),
            ServerTransport::Http {
                url,
                headers,
                legacy_sse,
            } => f
                .debug_struct("Http")
                .field("url", url)
                .field(
                    "headers",
                    &headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                )
                .field("legacy_sse", legacy_sse)
                .finish(),
        }
    }
}

/// One server of the config.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Its name (the key under `mcpServers`).
    pub name: String,
    /// How to reach it.
    pub transport: ServerTransport,
    /// `"disabled": true`: listed, but not added to a pool.
    pub disabled: bool,
    /// Its connection settings (the defaults with its overrides).
    pub connection: ConnectionConfig,
}

/// Reads an `mcpServers` document, expanding `${VAR}` with `lookup`.
pub fn parse_config(
    json: &str,
    defaults: &ConnectionConfig,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<ServerConfig>, ConfigError> {
    let root: Value = serde_json::from_str(json)
        .map_err(|e| ConfigError::new("config", format!("not valid JSON: {e}")))?;
    let Value::Object(root) = root else {
        return Err(ConfigError::new("config", "expected an object"));
    };
    let servers = match (root.get("mcpServers"), root.get("servers")) {
        (Some(s), _) | (None, Some(s)) => s,
        (None, None) => return Err(ConfigError::new("config", "no \"mcpServers\" object")),
    };
    let Value::Object(servers) = servers else {
        return Err(ConfigError::new("servers", "expected an object of servers"));
    };
    let reader = Reader { lookup: &lookup };
    servers
        .iter()
        .map(|(name, value)| reader.server(name, value, defaults))
        .collect()
}

struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Reader<'_> {
    fn server(
        &self,
        name: &str,
        value: &Value,
        defaults: &ConnectionConfig,
    ) -> Result<ServerConfig, ConfigError> {
        let path = format!("servers.{name}");
        if name.is_empty() {
            return Err(ConfigError::new(path, "a server needs a name"));
        }
        let Value::Object(obj) = value else {
            return Err(ConfigError::new(path, "expected an object"));
        };
        let kind = match (obj.get("type"), obj.get("transport")) {
            (Some(t), _) => Some(("type", t)),
            (None, Some(t)) => Some(("transport", t)),
            (None, None) => None,
        };
        let kind = match kind {
            Some((field, Value::String(t))) => Some(match t.as_str() {
                "stdio" => "stdio",
                "http" | "streamable-http" | "streamableHttp" | "streamable_http" => "http",
                "sse" => "sse",
                other => {
                    return Err(ConfigError::new(
                        format!("{path}.{field}"),
                        format!("unknown transport {other:?} (expected stdio, http, streamable-http or sse)"),
                    ))
                }
            }),
            Some((field, _)) => return Err(ConfigError::new(format!("{path}.{field}"), "expected a string")),
            None => None,
        };
        let has_command = obj.contains_key("command");
        let has_url = obj.contains_key("url");
        let kind = match (kind, has_command, has_url) {
            (_, true, true) => {
                return Err(ConfigError::new(path, "has both \"command\" and \"url\""))
            }
            (Some("stdio"), _, true) => {
                return Err(ConfigError::new(
                    format!("{path}.url"),
                    "a stdio server takes \"command\", not \"url\"",
                ))
            }
            (Some("http" | "sse"), true, _) => {
                return Err(ConfigError::new(
                    format!("{path}.command"),
                    "an HTTP server takes \"url\", not \"command\"",
                ))
            }
            (Some(k), _, _) => k,
            (None, true, false) => "stdio",
            (None, false, true) => "http",
            (None, false, false) => {
                return Err(ConfigError::new(
                    path,
                    "needs \"command\" (stdio) or \"url\" (HTTP)",
                ))
            }
        };
        let transport = if kind == "stdio" {
            ServerTransport::Stdio {
                command: self
                    .string(obj, &path, "command")?
                    .ok_or_else(|| ConfigError::new(format!("{path}.command"), "missing"))?,
                args: self.strings(obj, &path, "args")?,
                args_as_written: written_strings(obj, "args"),
                env: self.string_map(obj, &path, "env")?,
                cwd: self.string(obj, &path, "cwd")?,
            }
        } else {
            ServerTransport::Http {
                url: self
                    .string(obj, &path, "url")?
                    .ok_or_else(|| ConfigError::new(format!("{path}.url"), "missing"))?,
                headers: self.string_map(obj, &path, "headers")?,
                legacy_sse: kind == "sse",
            }
        };
        let disabled = match obj.get("disabled") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ConfigError::new(
                    format!("{path}.disabled"),
                    "expected true or false",
                ))
            }
        };
        let connection = match obj.get("connection") {
            None => defaults.clone(),
            Some(Value::Object(o)) => {
                overrides(o, &format!("{path}.connection"), defaults.clone())?
            }
            Some(_) => {
                return Err(ConfigError::new(
                    format!("{path}.connection"),
                    "expected an object",
                ))
            }
        };
        Ok(ServerConfig {
            name: name.to_owned(),
            transport,
            disabled,
            connection,
        })
    }

    fn string(
        &self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<Option<String>, ConfigError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => self.expand(s, &format!("{path}.{key}")).map(Some),
            Some(_) => Err(ConfigError::new(
                format!("{path}.{key}"),
                "expected a string",
            )),
        }
    }

    fn strings(
        &self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<Vec<String>, ConfigError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let at = format!("{path}.{key}[{i}]");
                    match v {
                        Value::String(s) => self.expand(s, &at),
                        _ => Err(ConfigError::new(at, "expected a string")),
                    }
                })
                .collect(),
            Some(_) => Err(ConfigError::new(
                format!("{path}.{key}"),
                "expected an array of strings",
            )),
        }
    }

    fn string_map(
        &self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    let at = format!("{path}.{key}.{k}");
                    match v {
                        Value::String(s) => Ok((k.clone(), self.expand(s, &at)?)),
                        _ => Err(ConfigError::new(at, "expected a string")),
                    }
                })
                .collect(),
            Some(_) => Err(ConfigError::new(
                format!("{path}.{key}"),
                "expected an object of strings",
            )),
        }
    }

    /// Replaces `${VAR}` and `${env:VAR}`.
    fn expand(&self, text: &str, path: &str) -> Result<String, ConfigError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(ConfigError::new(
                    path,
                    format!("unterminated \"${{\" in {text:?}"),
                ));
            };
            let var = after[..end]
                .strip_prefix("env:")
                .unwrap_or(&after[..end])
                .trim();
            if var.is_empty() {
                return Err(ConfigError::new(path, "empty variable name in \"${}\""));
            }
            let value = (self.lookup)(var).ok_or_else(|| {
                ConfigError::new(path, format!("environment variable {var} is not set"))
            })?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The strings of `key` as written (no expansion); checked by `strings`.
fn written_strings(obj: &Map<String, Value>, key: &str) -> Vec<String> {
    obj.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn overrides(
    o: &Map<String, Value>,
    path: &str,
    mut c: ConnectionConfig,
) -> Result<ConnectionConfig, ConfigError> {
    for (key, value) in o {
        let at = format!("{path}.{key}");
        // Finite, not negative, and at most `MAX_DURATION`: never a panic
        // in `Duration::from_secs_f64`, whatever the number.
        let secs = || -> Result<Duration, ConfigError> {
            let n = value
                .as_f64()
                .ok_or_else(|| ConfigError::new(at.clone(), "expected a number of seconds"))?;
            if !n.is_finite() || n < 0.0 {
                return Err(ConfigError::new(
                    at.clone(),
                    format!("expected a number of seconds (finite, not negative), got {n}"),
                ));
            }
            Duration::try_from_secs_f64(n)
                .ok()
                .filter(|d| *d <= MAX_DURATION)
                .ok_or_else(|| {
                    ConfigError::new(
                        at.clone(),
                        format!(
                            "{n} s is longer than the maximum of {} s",
                            MAX_DURATION.as_secs()
                        ),
                    )
                })
        };
        match key.as_str() {
            "auto_reconnect" => {
                c.auto_reconnect = value
                    .as_bool()
                    .ok_or_else(|| ConfigError::new(at.clone(), "expected true or false"))?
            }
            "max_reconnect_attempts" => {
                c.max_reconnect_attempts = value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| ConfigError::new(at.clone(), "expected a whole number"))?
            }
            "reconnect_delay" => c.reconnect_delay = secs()?,
            "max_reconnect_delay" => c.max_reconnect_delay = secs()?,
            "health_check_interval" => c.health_check_interval = secs()?,
            "connection_timeout" => c.connection_timeout = secs()?,
            "request_timeout" => c.request_timeout = secs()?,
            "health_check_timeout" => c.health_check_timeout = secs()?,
            other => {
                return Err(ConfigError::new(
                    at.clone(),
                    format!("unknown setting {other:?}"),
                ))
            }
        }
    }
    // Zero intervals, a max delay below the first delay, …: named by field.
    c.validate()
        .map_err(|e| ConfigError::new(format!("{path}.{}", e.field), e.message))?;
    Ok(c)
}
