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
//! - The servers are under `mcpServers` (Claude, Cursor, Windsurf) or
//!   `servers` (VS Code).
//! - `type` (or `transport`) is `stdio`, `http` (also `streamable-http`) or
//!   `sse`; when absent it is `stdio` for a `command` and `http` for a `url`
//!   (or Windsurf's `serverUrl`).
//! - In any string, `${VAR}` and `${env:VAR}` are replaced by the
//!   environment variable (an error when it is not set), `${VAR:-default}`
//!   by the variable or, when it is unset or empty, `default`; `$${` is a
//!   literal `${`. VS Code's `${input:…}` (a prompt) is refused with an
//!   error that says so.
//! - `envFile` (VS Code, Cursor) names a file of `KEY=VALUE` lines
//!   (blank lines and `#` comments skipped, `export ` and matching quotes
//!   removed) whose variables are set for a stdio server; `env` wins over
//!   it. A relative path is taken from the config file's folder
//!   ([`ConfigContext::base_dir`]).
//! - `${workspaceFolder}` (and `${workspaceFolderBasename}`) is resolved
//!   where its meaning is certain: for a file in a project's `.vscode/` or
//!   `.cursor/` folder it is that project's folder
//!   ([`ConfigContext::for_file`]); elsewhere it is refused with an error
//!   that says so. `${userHome}` is `$HOME`, `${pathSeparator}` is `/`.
//! - `connection` overrides [`ConnectionConfig`] fields (durations in
//!   seconds: finite, not negative, at most [`MAX_DURATION`]);
//!   `max_restarts` with `restart_window` (seconds, default 600) set the
//!   restart budget; `max_in_flight` bounds the requests in flight to it;
//!   `replay_after_reconnect` (a boolean) turns on safe replay.
//! - An HTTP server may have `caFile` (a PEM file of extra authorities to
//!   trust), `clientCert` and `clientKey` (PEM files, for mutual TLS),
//!   `proxy` (`"http(s)://[user:password@]host:port"`, or `false` for none;
//!   default: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) and
//!   `noProxy` (replaces `NO_PROXY`); relative paths are taken from the
//!   config file's folder. No host has a per-server convention for these;
//!   the environment variables hosts honour work without them.
//! - Other keys a host adds are ignored.
//!
//! Errors name the exact field: `mcpServers.fs.args[2]: expected a string`.
//! The document's shape is read with serde (derive, and
//! `serde_path_to_error` for the path); the checks across fields (a
//! `command` and a `url` both given, a `type` that contradicts them) and
//! the variable expansion are written here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcp_conn_core::{ConnectionConfig, MAX_DURATION};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

mod build;
pub(crate) use build::Built;
mod expand;
mod network;

pub use network::{HttpNetwork, ProxyChoice};

use expand::{read_env_file, Expander};

use crate::error::PoolConfigError;

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
        /// `"auth"`: OAuth 2.1 (see [`crate::auth`]).
        auth: Option<crate::auth::HttpAuth>,
        /// `caFile`, `clientCert`, `clientKey`, `proxy`, `noProxy`.
        network: HttpNetwork,
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
                auth,
                network,
            } => f
                .debug_struct("Http")
                .field("url", url)
                .field(
                    "headers",
                    &headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                )
                .field("legacy_sse", legacy_sse)
                .field("auth", auth)
                .field("network", network)
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
    /// The overrides as written, to tell a changed entry from an unchanged
    /// one when a config is applied again.
    pub(crate) overrides: Option<Overrides>,
}

impl ServerConfig {
    /// Whether `other` describes the same server: the same transport (after
    /// `${VAR}` expansion, so a changed variable counts) and the same
    /// connection overrides.
    pub(crate) fn same_as(&self, other: &ServerConfig) -> bool {
        self.transport == other.transport && self.overrides == other.overrides
    }
}

/// Where a config document came from, for what depends on it: relative
/// `envFile` paths and `${workspaceFolder}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigContext {
    /// The folder relative `envFile` paths are taken from (the config
    /// file's folder). `None`: a relative `envFile` is an error.
    pub base_dir: Option<PathBuf>,
    /// What `${workspaceFolder}` means. `None`: it is an error.
    pub workspace_folder: Option<PathBuf>,
}

impl ConfigContext {
    /// The context of the config file at `path`: its folder, and when that
    /// folder is a project's `.vscode/` or `.cursor/` (not the one in the
    /// home directory, which belongs to no project), the project's folder
    /// as `${workspaceFolder}`.
    pub fn for_file(path: &Path) -> Self {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base_dir = path.parent().map(Path::to_path_buf);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let workspace_folder = base_dir.as_deref().and_then(|dir| {
            let named = dir
                .file_name()
                .is_some_and(|n| n == ".vscode" || n == ".cursor");
            let project = dir.parent()?;
            (named && home.as_deref() != Some(project)).then(|| project.to_path_buf())
        });
        ConfigContext {
            base_dir,
            workspace_folder,
        }
    }
}

/// Reads the `mcpServers` document at `path` ([`parse_config_with`] with
/// [`ConfigContext::for_file`]).
pub fn read_config_file(
    path: &Path,
    defaults: &ConnectionConfig,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<ServerConfig>, PoolConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        PoolConfigError::new("config", format!("cannot read {}: {e}", path.display()))
    })?;
    parse_config_with(&text, defaults, lookup, &ConfigContext::for_file(path))
}

/// Reads an `mcpServers` document, expanding `${VAR}` with `lookup`, with
/// no [`ConfigContext`] (a relative `envFile` and `${workspaceFolder}` are
/// errors).
pub fn parse_config(
    json: &str,
    defaults: &ConnectionConfig,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<ServerConfig>, PoolConfigError> {
    parse_config_with(json, defaults, lookup, &ConfigContext::default())
}

/// Reads an `mcpServers` document, expanding `${VAR}` with `lookup`, in
/// `context`.
pub fn parse_config_with(
    json: &str,
    defaults: &ConnectionConfig,
    lookup: impl Fn(&str) -> Option<String>,
    context: &ConfigContext,
) -> Result<Vec<ServerConfig>, PoolConfigError> {
    let root: Value = serde_json::from_str(json)
        .map_err(|e| PoolConfigError::new("config", format!("not valid JSON: {e}")))?;
    let Value::Object(mut root) = root else {
        return Err(PoolConfigError::new("config", "expected an object"));
    };
    let (key, servers) = match (root.remove("mcpServers"), root.remove("servers")) {
        (Some(s), _) => ("mcpServers", s),
        (None, Some(s)) => ("servers", s),
        (None, None) => {
            return Err(PoolConfigError::new(
                "config",
                "no \"mcpServers\" (or \"servers\") object",
            ))
        }
    };
    let servers: BTreeMap<String, RawServer> =
        serde_path_to_error::deserialize(servers).map_err(|e| {
            let at = e.path().to_string();
            let path = if at == "." {
                key.to_owned()
            } else {
                format!("{key}.{at}")
            };
            PoolConfigError::new(path, shape_message(&e.into_inner().to_string()))
        })?;
    let expand = Expander {
        lookup: &lookup,
        context,
    };
    servers
        .into_iter()
        .map(|(name, raw)| raw.resolve(&format!("{key}.{name}"), name, defaults, &expand))
        .collect()
}

/// serde's message without the echo of the wrong value: `invalid type:
/// integer `7`, expected a string` becomes `expected a string`.
fn shape_message(message: &str) -> String {
    let message = match message.strip_prefix("invalid type: ") {
        Some(rest) => rest.find(", expected ").map_or(rest, |i| &rest[i + 2..]),
        None => message,
    };
    message
        .replace("expected a sequence", "expected an array of strings")
        .replace("expected a map", "expected an object of strings")
        .replace("expected a boolean", "expected true or false")
}

/// One server as written. Unknown keys (hosts add their own) are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct RawServer {
    #[serde(rename = "type")]
    kind: Option<String>,
    transport: Option<String>,
    command: Option<String>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    env_file: Option<String>,
    cwd: Option<String>,
    url: Option<String>,
    server_url: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    auth: Option<Value>,
    ca_file: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    proxy: Option<Value>,
    no_proxy: Option<String>,
    disabled: Option<bool>,
    connection: Option<Overrides>,
}

/// `connection`: overrides of [`ConnectionConfig`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
pub(crate) struct Overrides {
    auto_reconnect: Option<bool>,
    #[serde(default, deserialize_with = "whole_number")]
    max_reconnect_attempts: Option<u32>,
    #[serde(default, deserialize_with = "seconds")]
    reconnect_delay: Option<Duration>,
    #[serde(default, deserialize_with = "seconds")]
    max_reconnect_delay: Option<Duration>,
    #[serde(default, deserialize_with = "seconds")]
    health_check_interval: Option<Duration>,
    #[serde(default, deserialize_with = "seconds")]
    connection_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "seconds")]
    request_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "seconds")]
    health_check_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "whole_number")]
    max_in_flight: Option<u32>,
    replay_after_reconnect: Option<bool>,
    /// With `restart_window`: the restart budget.
    #[serde(default, deserialize_with = "whole_number")]
    max_restarts: Option<u32>,
    #[serde(default, deserialize_with = "seconds")]
    restart_window: Option<Duration>,
}

/// A number of seconds: finite, not negative, at most [`MAX_DURATION`]
/// (never a panic in `Duration::from_secs_f64`, whatever the number).
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    use serde::de::Error;
    let Some(value) = Option::<Value>::deserialize(d)? else {
        return Ok(None);
    };
    let n = value
        .as_f64()
        .ok_or_else(|| D::Error::custom("expected a number of seconds"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(D::Error::custom(format!(
            "expected a number of seconds (finite, not negative), got {n}"
        )));
    }
    Duration::try_from_secs_f64(n)
        .ok()
        .filter(|d| *d <= MAX_DURATION)
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "{n} s is longer than the maximum of {} s",
                MAX_DURATION.as_secs()
            ))
        })
}

fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    let Some(value) = Option::<Value>::deserialize(d)? else {
        return Ok(None);
    };
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom("expected a whole number"))
}

impl Overrides {
    fn apply(
        &self,
        path: &str,
        mut c: ConnectionConfig,
    ) -> Result<ConnectionConfig, PoolConfigError> {
        let set = |field: &mut Duration, value: Option<Duration>| {
            if let Some(v) = value {
                *field = v;
            }
        };
        if let Some(v) = self.auto_reconnect {
            c.auto_reconnect = v;
        }
        if let Some(v) = self.max_reconnect_attempts {
            c.max_reconnect_attempts = v;
        }
        set(&mut c.reconnect_delay, self.reconnect_delay);
        set(&mut c.max_reconnect_delay, self.max_reconnect_delay);
        set(&mut c.health_check_interval, self.health_check_interval);
        set(&mut c.connection_timeout, self.connection_timeout);
        set(&mut c.request_timeout, self.request_timeout);
        set(&mut c.health_check_timeout, self.health_check_timeout);
        if let Some(n) = self.max_in_flight {
            c.max_in_flight = Some(n as usize);
        }
        if let Some(v) = self.replay_after_reconnect {
            c.replay_after_reconnect = v;
        }
        if let Some(max_restarts) = self.max_restarts {
            c.restart_budget = Some(mcp_conn_core::RestartBudget {
                max_restarts,
                // Ten minutes unless the config says otherwise.
                window: self.restart_window.unwrap_or(Duration::from_secs(600)),
            });
        } else if self.restart_window.is_some() {
            return Err(PoolConfigError::new(
                format!("{path}.restart_window"),
                "goes with max_restarts",
            ));
        }
        // Zero intervals, a max delay below the first delay, …: by field.
        c.validate()
            .map_err(|e| PoolConfigError::new(format!("{path}.{}", e.field), e.message))?;
        Ok(c)
    }
}

/// The transport kind, from `type`/`transport` and which keys are given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stdio,
    Http,
    Sse,
}

impl RawServer {
    fn kind(&self, path: &str) -> Result<Kind, PoolConfigError> {
        let named = match (&self.kind, &self.transport) {
            (Some(t), _) => Some(("type", t)),
            (None, Some(t)) => Some(("transport", t)),
            (None, None) => None,
        };
        let named = match named {
            None => None,
            Some((field, t)) => Some(match t.as_str() {
                "stdio" => Kind::Stdio,
                "http" | "streamable-http" | "streamableHttp" | "streamable_http" => Kind::Http,
                "sse" => Kind::Sse,
                other => {
                    return Err(PoolConfigError::new(
                        format!("{path}.{field}"),
                        format!("unknown transport {other:?} (expected stdio, http, streamable-http or sse)"),
                    ))
                }
            }),
        };
        let has_command = self.command.is_some();
        let has_url = self.url.is_some() || self.server_url.is_some();
        match (named, has_command, has_url) {
            (_, true, true) => Err(PoolConfigError::new(
                path,
                "has both \"command\" and \"url\"",
            )),
            (Some(Kind::Stdio), _, true) => Err(PoolConfigError::new(
                format!("{path}.url"),
                "a stdio server takes \"command\", not \"url\"",
            )),
            (Some(Kind::Http | Kind::Sse), true, _) => Err(PoolConfigError::new(
                format!("{path}.command"),
                "an HTTP server takes \"url\", not \"command\"",
            )),
            (Some(k), _, _) => Ok(k),
            (None, true, false) => Ok(Kind::Stdio),
            (None, false, true) => Ok(Kind::Http),
            (None, false, false) => Err(PoolConfigError::new(
                path,
                "needs \"command\" (stdio) or \"url\" (HTTP)",
            )),
        }
    }

    fn resolve(
        self,
        path: &str,
        name: String,
        defaults: &ConnectionConfig,
        expand: &Expander<'_>,
    ) -> Result<ServerConfig, PoolConfigError> {
        if name.is_empty() {
            return Err(PoolConfigError::new(path, "a server needs a name"));
        }
        let kind = self.kind(path)?;
        let opt = |value: Option<String>, key: &str| -> Result<Option<String>, PoolConfigError> {
            value
                .map(|v| expand.expand(&v, &format!("{path}.{key}")))
                .transpose()
        };
        let map = |value: Option<BTreeMap<String, String>>, key: &str| {
            value
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| {
                    let at = format!("{path}.{key}.{k}");
                    Ok((k, expand.expand(&v, &at)?))
                })
                .collect::<Result<Vec<_>, PoolConfigError>>()
        };
        if self.auth.is_some() && kind == Kind::Stdio {
            return Err(PoolConfigError::new(
                format!("{path}.auth"),
                "authorization is for HTTP servers; give a stdio server its credentials in `env`",
            ));
        }
        let network = network::RawNetwork {
            ca_file: self.ca_file,
            client_cert: self.client_cert,
            client_key: self.client_key,
            proxy: self.proxy,
            no_proxy: self.no_proxy,
        };
        if let (Some(key), Kind::Stdio) = (network.any(), kind) {
            return Err(PoolConfigError::new(
                format!("{path}.{key}"),
                "is for HTTP servers (a stdio server reads proxies and certificates from its `env`)",
            ));
        }
        let transport = match kind {
            Kind::Stdio => {
                let args_as_written = self.args.unwrap_or_default();
                let args = args_as_written
                    .iter()
                    .enumerate()
                    .map(|(i, a)| expand.expand(a, &format!("{path}.args[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut env = match opt(self.env_file, "envFile")? {
                    Some(file) => read_env_file(&file, &format!("{path}.envFile"), expand.context)?,
                    None => Vec::new(),
                };
                for (k, v) in map(self.env, "env")? {
                    env.retain(|(name, _)| *name != k);
                    env.push((k, v));
                }
                ServerTransport::Stdio {
                    command: opt(self.command, "command")?.ok_or_else(|| {
                        PoolConfigError::new(format!("{path}.command"), "missing")
                    })?,
                    args,
                    args_as_written,
                    env,
                    cwd: opt(self.cwd, "cwd")?,
                }
            }
            Kind::Http | Kind::Sse => {
                let (key, url) = match (self.url, self.server_url) {
                    (Some(u), _) => ("url", u),
                    (None, Some(u)) => ("serverUrl", u),
                    (None, None) => {
                        return Err(PoolConfigError::new(format!("{path}.url"), "missing"))
                    }
                };
                ServerTransport::Http {
                    url: expand.expand(&url, &format!("{path}.{key}"))?,
                    headers: map(self.headers, "headers")?,
                    legacy_sse: kind == Kind::Sse,
                    auth: match self.auth {
                        Some(value) => crate::auth::HttpAuth::parse(
                            value,
                            &format!("{path}.auth"),
                            &|text, at| expand.expand(text, at),
                        )?,
                        None => None,
                    },
                    network: network.resolve(path, expand)?,
                }
            }
        };
        let connection = match &self.connection {
            None => defaults.clone(),
            Some(o) => o.apply(&format!("{path}.connection"), defaults.clone())?,
        };
        Ok(ServerConfig {
            name,
            transport,
            disabled: self.disabled.unwrap_or(false),
            connection,
            overrides: self.connection,
        })
    }
}
