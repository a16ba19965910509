//! Which config files to read, and reading them.
//!
//! With no file given, these are read when they exist (`~` is `$HOME`, `.`
//! the current directory):
//!
//! | host | files |
//! |---|---|
//! | Claude Desktop | `~/Library/Application Support/Claude/claude_desktop_config.json` (macOS), `~/.config/Claude/claude_desktop_config.json` (Linux) |
//! | Claude Code | `./.mcp.json` (project scope); `~/.claude.json`: its top-level `mcpServers` (user scope) and `projects["<current directory>"].mcpServers` (local scope, which wins on a name clash) |
//! | Cursor | `./.cursor/mcp.json`, `~/.cursor/mcp.json` |
//! | VS Code | `./.vscode/mcp.json`, `~/Library/Application Support/Code/User/mcp.json` (macOS), `~/.config/Code/User/mcp.json` (Linux) |
//! | Windsurf | `~/.codeium/windsurf/mcp_config.json` |
//!
//! A discovered file without a `mcpServers`/`servers` object counts as
//! having no servers; a file given on the command line must have one. A
//! server name found in two files is checked once when both describe the
//! same server, and otherwise the later one is renamed `NAME-2`.

use std::path::{Path, PathBuf};

use mcp_conn_core::ConnectionConfig;
use mcp_conn_pool::{
    parse_config_with, read_config_file, ConfigContext, PoolConfigError, ServerConfig,
};
use serde_json::{Map, Value};

use crate::error::CliError;

/// A file that was read.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) path: PathBuf,
    pub(crate) host: &'static str,
    /// Servers it holds (disabled ones included).
    pub(crate) servers: usize,
}

/// One server, and the file it came from.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) server: ServerConfig,
    pub(crate) source: usize,
}

/// Everything read.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) sources: Vec<Source>,
    pub(crate) entries: Vec<Entry>,
    /// Things worth saying (renamed duplicates, …).
    pub(crate) notes: Vec<String>,
}

impl Loaded {
    pub(crate) fn enabled(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.server.disabled)
    }

    /// "Read 2 configs: …" lines, for stderr.
    pub(crate) fn describe(&self) -> String {
        let mut out = format!(
            "Read {} config{}:",
            self.sources.len(),
            if self.sources.len() == 1 { "" } else { "s" }
        );
        for s in &self.sources {
            out.push_str(&format!(
                "\n  {} ({}, {} server{})",
                s.path.display(),
                s.host,
                s.servers,
                if s.servers == 1 { "" } else { "s" }
            ));
        }
        for n in &self.notes {
            out.push_str(&format!("\n  note: {n}"));
        }
        out
    }
}

/// The usual places, in order, for `home` and the current directory `cwd`.
pub(crate) fn candidates(home: Option<&Path>, cwd: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut out = vec![
        (cwd.join(".mcp.json"), "Claude Code"),
        (cwd.join(".cursor/mcp.json"), "Cursor"),
        (cwd.join(".vscode/mcp.json"), "VS Code"),
    ];
    if let Some(home) = home {
        out.extend([
            (
                home.join("Library/Application Support/Claude/claude_desktop_config.json"),
                "Claude Desktop",
            ),
            (
                home.join(".config/Claude/claude_desktop_config.json"),
                "Claude Desktop",
            ),
            (home.join(".claude.json"), "Claude Code"),
            (home.join(".cursor/mcp.json"), "Cursor"),
            (
                home.join("Library/Application Support/Code/User/mcp.json"),
                "VS Code",
            ),
            (home.join(".config/Code/User/mcp.json"), "VS Code"),
            (home.join(".codeium/windsurf/mcp_config.json"), "Windsurf"),
        ]);
    }
    // The same file twice (cwd is $HOME): once.
    let mut seen = Vec::new();
    out.retain(|(p, _)| {
        let key = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        let new = !seen.contains(&key);
        seen.push(key);
        new
    });
    out
}

/// Reads the files given, or the usual places when none is.
pub(crate) fn load(given: &[PathBuf], defaults: &ConnectionConfig) -> Result<Loaded, CliError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let files: Vec<(PathBuf, &'static str, bool)> = if given.is_empty() {
        let all = candidates(home.as_deref(), &cwd);
        let found: Vec<_> = all
            .iter()
            .filter(|(p, _)| p.is_file())
            .map(|(p, h)| (p.clone(), *h, false))
            .collect();
        if found.is_empty() {
            return Err(CliError::NoConfig {
                looked: all.into_iter().map(|(p, _)| p).collect(),
            });
        }
        found
    } else {
        given.iter().map(|p| (p.clone(), "given", true)).collect()
    };
    let mut loaded = Loaded::default();
    for (path, host, required) in files {
        let servers =
            read_one(&path, required, &cwd, defaults).map_err(|source| CliError::Config {
                file: path.clone(),
                source,
            })?;
        let index = loaded.sources.len();
        loaded.sources.push(Source {
            path: path.clone(),
            host,
            servers: servers.len(),
        });
        for server in servers {
            add(&mut loaded, server, index);
        }
    }
    Ok(loaded)
}

fn add(loaded: &mut Loaded, mut server: ServerConfig, source: usize) {
    let same_name = loaded.entries.iter().find(|e| e.server.name == server.name);
    if let Some(existing) = same_name {
        let first = loaded.sources[existing.source].path.display().to_string();
        if existing.server.transport == server.transport {
            let here = loaded.sources[source].path.display().to_string();
            loaded.notes.push(format!(
                "{} in {here} is the same server as in {first}: checked once",
                server.name
            ));
            return;
        }
        let renamed = (2..)
            .map(|n| format!("{}-{n}", server.name))
            .find(|candidate| loaded.entries.iter().all(|e| &e.server.name != candidate))
            .unwrap_or_default();
        loaded.notes.push(format!(
            "{} is also in {first}, with other settings: this one is {renamed}",
            server.name
        ));
        server.name = renamed;
    }
    loaded.entries.push(Entry { server, source });
}

/// One file. `~/.claude.json` is read as Claude Code does (see the module).
fn read_one(
    path: &Path,
    required: bool,
    cwd: &Path,
    defaults: &ConnectionConfig,
) -> Result<Vec<ServerConfig>, PoolConfigError> {
    let env = |v: &str| std::env::var(v).ok();
    let text = std::fs::read_to_string(path).map_err(|e| PoolConfigError {
        path: "config".into(),
        message: format!("cannot read it: {e}"),
    })?;
    let claude_code_user = path.file_name().is_some_and(|n| n == ".claude.json");
    if claude_code_user {
        let doc = claude_json_servers(&text, cwd)?;
        return parse_config_with(&doc, defaults, env, &ConfigContext::for_file(path));
    }
    if !required && !has_servers(&text) {
        return Ok(Vec::new());
    }
    read_config_file(path, defaults, env)
}

/// Whether a discovered file has a `mcpServers` or `servers` key (when it
/// is not JSON at all, the reader says so).
fn has_servers(text: &str) -> bool {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(root)) => root.contains_key("mcpServers") || root.contains_key("servers"),
        _ => true,
    }
}

/// `~/.claude.json`: the user-scope `mcpServers` and the local-scope ones of
/// the project at `cwd` (which win), as one `mcpServers` document.
pub(crate) fn claude_json_servers(text: &str, cwd: &Path) -> Result<String, PoolConfigError> {
    let root: Value = serde_json::from_str(text).map_err(|e| PoolConfigError {
        path: "config".into(),
        message: format!("not valid JSON: {e}"),
    })?;
    let mut merged = Map::new();
    let object = |v: Option<&Value>, at: &str| -> Result<Map<String, Value>, PoolConfigError> {
        match v {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(PoolConfigError {
                path: at.into(),
                message: "expected an object".into(),
            }),
        }
    };
    merged.extend(object(root.get("mcpServers"), "mcpServers")?);
    let here = cwd.display().to_string();
    let project = root.get("projects").and_then(|p| p.get(&here));
    merged.extend(object(
        project.and_then(|p| p.get("mcpServers")),
        &format!("projects[{here:?}].mcpServers"),
    )?);
    Ok(Value::Object(Map::from_iter([(
        "mcpServers".to_owned(),
        Value::Object(merged),
    )]))
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_json_merges_user_and_this_projects_servers() {
        let text = r#"{
          "numStartups": 12,
          "mcpServers": {"a": {"command": "a"}, "shared": {"command": "user"}},
          "projects": {
            "/work/app": {"allowedTools": [], "mcpServers": {"shared": {"command": "local"}, "b": {"url": "http://x/mcp"}}},
            "/work/other": {"mcpServers": {"c": {"command": "c"}}}
          }
        }"#;
        let doc = claude_json_servers(text, Path::new("/work/app")).expect("reads");
        let v: Value = serde_json::from_str(&doc).expect("json");
        let servers = v["mcpServers"].as_object().expect("object");
        assert_eq!(servers.len(), 3);
        assert_eq!(servers["shared"]["command"], "local");
        assert!(
            !servers.contains_key("c"),
            "another project's servers are not read"
        );
        let none = claude_json_servers(r#"{"projects": {}}"#, Path::new("/x")).expect("reads");
        assert_eq!(none, r#"{"mcpServers":{}}"#);
        let bad = claude_json_servers(r#"{"mcpServers": []}"#, Path::new("/x"));
        assert_eq!(bad.map_err(|e| e.path), Err("mcpServers".to_owned()));
    }

    #[test]
    fn candidates_cover_every_host() {
        let c = candidates(Some(Path::new("/h")), Path::new("/p"));
        let hosts: std::collections::BTreeSet<_> = c.iter().map(|(_, h)| *h).collect();
        assert_eq!(hosts.len(), 5, "{hosts:?}");
        assert!(c
            .iter()
            .any(|(p, _)| p == Path::new("/h/.codeium/windsurf/mcp_config.json")));
        assert!(c.iter().any(|(p, _)| p == Path::new("/p/.vscode/mcp.json")));
    }
}
