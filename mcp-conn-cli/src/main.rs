//! `mcp-conn`: checks, lists and calls the MCP servers an MCP host (Claude
//! Desktop, Claude Code, Cursor, VS Code, Windsurf) is configured with.
//!
//! Built on the public API of `mcp-conn-pool` and `mcp-conn-core` only.
//! Exit status: 0 when everything asked for worked, 1 when a server failed
//! (or a tool reported an error), 2 for a usage or config error.
#![deny(missing_docs)]

mod auth;
mod call;
mod check;
mod error;
mod explain;
mod hosts;
mod output;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::CliError;

/// Checks, lists and calls the MCP servers of your MCP hosts' configs.
///
/// With no CONFIG, reads the configs of Claude Desktop, Claude Code, Cursor,
/// VS Code and Windsurf found in their usual places (and says which).
#[derive(Debug, Parser)]
#[command(name = "mcp-conn", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connects to every enabled server at once and reports which work,
    /// why not, and how fast.
    ///
    /// Exit status: 0 when every enabled server is connected and answers a
    /// ping, 1 otherwise, 2 for a usage or config error.
    Check(CheckArgs),
    /// Lists every tool of every server, as SERVER__TOOL with its
    /// description.
    Tools(ToolsArgs),
    /// Calls one tool and prints its result.
    ///
    /// Exit status: 0 on success, 1 when the tool reports an error or the
    /// server cannot be reached, 2 for a usage or config error.
    Call(CallArgs),
    /// Keeps every server connected and monitored, and prints status changes
    /// and failed probes as they happen. The config files it read are read
    /// again every second: a change is applied to the running servers
    /// (added ones started, removed ones stopped, changed ones restarted,
    /// the others untouched); a broken file changes nothing. Ctrl-C stops
    /// it cleanly.
    Watch(WatchArgs),
    /// Authorizes with a remote server that uses OAuth: opens your browser
    /// (or prints the URL to open), waits for your consent, and stores the
    /// tokens, so that the other commands can use the server without asking
    /// again. The other commands never ask: `check` says which servers need
    /// this.
    ///
    /// Tokens are kept in $MCP_CONN_CREDENTIALS, else
    /// $XDG_CONFIG_HOME/mcp-conn/credentials.json, else
    /// ~/.config/mcp-conn/credentials.json (readable by you only).
    ///
    /// Exit status: 0 when authorized and connected, 1 when not, 2 for a
    /// usage or config error.
    Auth(AuthArgs),
}

#[derive(Debug, Args)]
struct AuthArgs {
    /// The config file to find the server in. Default: the hosts' configs.
    #[arg(long, value_name = "CONFIG")]
    config: Option<PathBuf>,
    /// The server's name in the config.
    #[arg(value_name = "SERVER")]
    server: String,
    /// How long to wait for your consent and the connection (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0, value_parser = parse_seconds)]
    timeout: f64,
}

/// What every command that reads configs takes.
#[derive(Debug, Args)]
struct Configs {
    /// Config files (`mcpServers` or `servers` JSON). Default: the hosts'
    /// configs found in their usual places.
    #[arg(value_name = "CONFIG")]
    configs: Vec<PathBuf>,
    /// How long one server may take to connect (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, value_parser = parse_seconds)]
    timeout: f64,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    configs: Configs,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,
    /// How many servers connect at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
}

#[derive(Debug, Args)]
struct ToolsArgs {
    #[command(flatten)]
    configs: Configs,
    /// Print JSON instead of lines.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CallArgs {
    /// The config file to find the server in. Default: the hosts' configs.
    #[arg(long, value_name = "CONFIG")]
    config: Option<PathBuf>,
    /// The tool, as `tools` lists it: SERVER__TOOL.
    #[arg(value_name = "SERVER__TOOL")]
    tool: String,
    /// The tool's arguments, a JSON object. Default: {}.
    #[arg(value_name = "JSON-ARGUMENTS")]
    arguments: Option<String>,
    /// How long connecting and the call may take (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = parse_seconds)]
    timeout: f64,
}

#[derive(Debug, Args)]
struct WatchArgs {
    #[command(flatten)]
    configs: Configs,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long = "for", value_name = "SECONDS", value_parser = parse_seconds)]
    duration: Option<f64>,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let n: f64 = s.parse().map_err(|_| format!("not a number: {s}"))?;
    if n.is_finite() && n > 0.0 && n <= 86_400.0 {
        Ok(n)
    } else {
        Err("expected a number of seconds, more than 0 and at most 86400".into())
    }
}

impl Configs {
    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-conn: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Check(a) => check::run(a).await,
            Command::Tools(a) => call::tools(a).await,
            Command::Call(a) => call::call(a).await,
            Command::Watch(a) => watch::run(a).await,
            Command::Auth(a) => auth::run(a).await,
        }
    });
    // Servers that did not stop within the pool's shutdown timeout are
    // killed when the runtime (and their transports) are dropped.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcp-conn: {e}");
            e.exit_code()
        }
    }
}

/// The exit status of a command that ran.
pub(crate) fn status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A type for commands' outcomes.
pub(crate) type Outcome = Result<ExitCode, CliError>;

/// Ctrl-C, listened for from the moment this is made (so one pressed while
/// servers start is not lost, and never kills the command before it has
/// stopped its servers).
pub(crate) struct Interrupt {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Interrupt {
    pub(crate) fn new() -> Self {
        Interrupt {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok(),
        }
    }

    /// Waits for Ctrl-C.
    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        match &mut self.signal {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
