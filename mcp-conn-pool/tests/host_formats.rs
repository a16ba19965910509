//! Every host's config file, in the shape the host writes it, read unchanged.
//!
//! The files are written where the hosts keep them (a `.vscode/` folder, a
//! `.cursor/` folder, …) under a temporary folder, because what a file
//! means can depend on where it is (`envFile`, `${workspaceFolder}`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use mcp_conn_core::ConnectionConfig;
use mcp_conn_pool::{
    parse_config_with, read_config_file, ConfigContext, ServerConfig, ServerTransport,
};

struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("mcp-conn-hosts-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        Dir(p)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("dirs");
        std::fs::write(&p, text).expect("write");
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env(var: &str) -> Option<String> {
    match var {
        "HOME" => Some("/home/ada".into()),
        "GITHUB_TOKEN" => Some("ghp_x".into()),
        "API_KEY" => Some("k".into()),
        _ => None,
    }
}

fn read(path: &Path) -> Result<Vec<ServerConfig>, String> {
    read_config_file(path, &ConnectionConfig::default(), env).map_err(|e| e.to_string())
}

fn by<'a>(servers: &'a [ServerConfig], name: &str) -> &'a ServerConfig {
    servers
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no server {name}"))
}

type Stdio<'a> = (
    &'a str,
    &'a [String],
    &'a [(String, String)],
    Option<&'a str>,
);

fn stdio(s: &ServerConfig) -> Stdio<'_> {
    match &s.transport {
        ServerTransport::Stdio {
            command,
            args,
            env,
            cwd,
            ..
        } => (command, args, env, cwd.as_deref()),
        other => panic!("{}: not stdio: {other:?}", s.name),
    }
}

fn http(s: &ServerConfig) -> (&str, &[(String, String)], bool) {
    match &s.transport {
        ServerTransport::Http {
            url,
            headers,
            legacy_sse,
            ..
        } => (url, headers, *legacy_sse),
        other => panic!("{}: not HTTP: {other:?}", s.name),
    }
}

#[test]
fn claude_desktop_config() {
    let dir = Dir::new();
    let path = dir.write(
        "Library/Application Support/Claude/claude_desktop_config.json",
        r#"{
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/ada/Desktop", "/Users/ada/Downloads"]
    },
    "github": {
      "command": "docker",
      "args": ["run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"],
      "env": { "GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}" }
    }
  },
  "globalShortcut": "Alt+Space",
  "preferences": { "menuBarEnabled": false }
}"#,
    );
    let servers = read(&path).expect("reads");
    assert_eq!(servers.len(), 2);
    let (command, args, _, _) = stdio(by(&servers, "filesystem"));
    assert_eq!((command, args.len()), ("npx", 4));
    let (_, _, env, _) = stdio(by(&servers, "github"));
    assert_eq!(
        env,
        [("GITHUB_PERSONAL_ACCESS_TOKEN".into(), "ghp_x".into())]
    );
}

#[test]
fn claude_code_project_mcp_json() {
    let dir = Dir::new();
    let path = dir.write(
        ".mcp.json",
        r#"{
  "mcpServers": {
    "sentry": { "type": "http", "url": "https://mcp.sentry.dev/mcp" },
    "api": {
      "type": "http",
      "url": "${API_BASE_URL:-https://api.example.com}/mcp",
      "headers": { "Authorization": "Bearer ${API_KEY}" }
    },
    "asana": { "type": "sse", "url": "https://mcp.asana.com/sse" },
    "local": { "type": "stdio", "command": "${HOME}/bin/server", "args": [], "env": { "LOG": "${LOG_LEVEL:-info}" } }
  }
}"#,
    );
    let servers = read(&path).expect("reads");
    assert_eq!(
        http(by(&servers, "sentry")),
        ("https://mcp.sentry.dev/mcp", &[][..], false)
    );
    let (url, headers, _) = http(by(&servers, "api"));
    assert_eq!(url, "https://api.example.com/mcp");
    assert_eq!(headers, [("Authorization".into(), "Bearer k".into())]);
    assert!(http(by(&servers, "asana")).2, "sse is the legacy transport");
    let (command, _, env, _) = stdio(by(&servers, "local"));
    assert_eq!(command, "/home/ada/bin/server");
    assert_eq!(env, [("LOG".into(), "info".into())]);
}

#[test]
fn claude_code_user_file_top_level_servers() {
    // `~/.claude.json` holds much more than servers; its top-level
    // `mcpServers` are the user-scope ones (the per-project ones under
    // `projects.<path>` are merged in by `mcp-conn`, see its README).
    let dir = Dir::new();
    let path = dir.write(
        ".claude.json",
        r#"{
  "numStartups": 42,
  "autoUpdates": true,
  "mcpServers": { "context7": { "type": "stdio", "command": "npx", "args": ["-y", "@upstash/context7-mcp"], "env": {} } },
  "projects": { "/home/ada/app": { "allowedTools": [], "mcpServers": {}, "hasTrustDialogAccepted": true } }
}"#,
    );
    let servers = read(&path).expect("reads");
    assert_eq!(servers.len(), 1);
    assert_eq!(stdio(&servers[0]).0, "npx");
}

#[test]
fn cursor_project_and_user_files() {
    let dir = Dir::new();
    dir.write(
        ".env",
        "# secrets\nexport DB_URL=\"postgres://db\"\n\nMODE=ro\n",
    );
    let project = dir.write(
        "app/.cursor/mcp.json",
        r#"{
  "mcpServers": {
    "db": { "command": "uvx", "args": ["mcp-db", "${workspaceFolder}/data"], "envFile": "../../.env", "env": { "MODE": "rw" } },
    "remote": { "url": "https://mcp.example.com/mcp", "headers": { "Authorization": "Bearer ${env:API_KEY}" } }
  }
}"#,
    );
    let servers = read(&project).expect("reads");
    let (_, args, vars, _) = stdio(by(&servers, "db"));
    let app = std::path::absolute(dir.0.join("app")).expect("absolute");
    assert_eq!(args[1], format!("{}/data", app.display()));
    assert_eq!(
        vars,
        [
            ("DB_URL".into(), "postgres://db".into()),
            ("MODE".into(), "rw".into())
        ],
        "envFile values, then env (which wins)"
    );
    assert_eq!(http(by(&servers, "remote")).1[0].1, "Bearer k");
    // The user's file (`~/.cursor/mcp.json`) has no workspace.
    let user = parse_config_with(
        r#"{"mcpServers": {"x": {"command": "y", "args": ["${workspaceFolder}"]}}}"#,
        &ConnectionConfig::default(),
        env,
        &ConfigContext::default(),
    );
    let e = user.expect_err("no workspace there").to_string();
    assert!(
        e.starts_with("mcpServers.x.args[0]: \"${workspaceFolder}\" is a VS Code variable"),
        "{e}"
    );
}

#[test]
fn vscode_workspace_file_with_servers_and_inputs() {
    let dir = Dir::new();
    dir.write("proj/.env", "TOKEN=abc\n");
    let path = dir.write(
        "proj/.vscode/mcp.json",
        r#"{
  "inputs": [
    { "type": "promptString", "id": "perplexity-key", "description": "Perplexity API Key", "password": true }
  ],
  "servers": {
    "fetch": { "type": "stdio", "command": "uvx", "args": ["mcp-server-fetch"] },
    "files": { "type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "${workspaceFolder}"], "envFile": "${workspaceFolder}/.env", "cwd": "${workspaceFolder}" },
    "github": { "type": "http", "url": "https://api.githubcopilot.com/mcp/" }
  }
}"#,
    );
    let servers = read(&path).expect("reads");
    let proj = std::path::absolute(dir.0.join("proj")).expect("absolute");
    let (_, args, env, cwd) = stdio(by(&servers, "files"));
    assert_eq!(args[2], proj.display().to_string());
    assert_eq!(cwd, Some(proj.display().to_string().as_str()));
    assert_eq!(env, [("TOKEN".into(), "abc".into())]);
    assert_eq!(
        http(by(&servers, "github")).0,
        "https://api.githubcopilot.com/mcp/"
    );
    // A server that needs an input is refused, naming the field.
    let with_input = dir.write(
        "proj/.vscode/mcp.json",
        r#"{"inputs": [{"type": "promptString", "id": "key", "password": true}],
            "servers": {"perplexity": {"type": "stdio", "command": "npx", "args": ["-y", "server-perplexity-ask"], "env": {"PERPLEXITY_API_KEY": "${input:key}"}}}}"#,
    );
    let e = read(&with_input).expect_err("an input cannot be resolved");
    assert!(
        e.starts_with("servers.perplexity.env.PERPLEXITY_API_KEY: \"${input:key}\""),
        "{e}"
    );
    assert!(e.contains("prompts for"), "{e}");
}

#[test]
fn windsurf_file_with_server_url() {
    let dir = Dir::new();
    let path = dir.write(
        ".codeium/windsurf/mcp_config.json",
        r#"{
  "mcpServers": {
    "github": { "serverUrl": "https://api.githubcopilot.com/mcp/", "headers": { "Authorization": "Bearer ${GITHUB_TOKEN}" } },
    "zapier": { "serverUrl": "https://actions.zapier.com/mcp/KEY/sse", "type": "sse" },
    "git": { "command": "uvx", "args": ["mcp-server-git"], "disabled": true, "env": {} },
    "ollama": { "command": "py", "args": ["-m", "mcp_ollama_python"], "disabled": false, "env": {} }
  }
}"#,
    );
    let servers = read(&path).expect("reads");
    let (url, headers, sse) = http(by(&servers, "github"));
    assert_eq!(
        (url, headers[0].1.as_str(), sse),
        ("https://api.githubcopilot.com/mcp/", "Bearer ghp_x", false)
    );
    assert!(http(by(&servers, "zapier")).2);
    assert!(by(&servers, "git").disabled);
    assert!(!by(&servers, "ollama").disabled);
}

#[test]
fn env_file_errors_name_the_field_and_line() {
    let dir = Dir::new();
    dir.write("bad.env", "GOOD=1\nthis line has no equals sign\n");
    let path = dir.write(
        "c.json",
        r#"{"mcpServers": {"s": {"command": "x", "envFile": "bad.env"}, "t": {"command": "x"}}}"#,
    );
    let e = read(&path).expect_err("a bad line");
    assert!(e.starts_with("mcpServers.s.envFile: "), "{e}");
    assert!(e.ends_with("bad.env line 2: expected KEY=VALUE"), "{e}");
    let missing = dir.write(
        "m.json",
        r#"{"mcpServers": {"s": {"command": "x", "envFile": "nope.env"}}}"#,
    );
    let e = read(&missing).expect_err("no such file");
    assert!(e.starts_with("mcpServers.s.envFile: cannot read "), "{e}");
    // Without a file to be relative to, a relative envFile is refused.
    let e = parse_config_with(
        r#"{"mcpServers": {"s": {"command": "x", "envFile": ".env"}}}"#,
        &ConnectionConfig::default(),
        env,
        &ConfigContext::default(),
    )
    .expect_err("relative to nothing")
    .to_string();
    assert!(e.contains("relative path"), "{e}");
}
