//! `mcp-conn watch`: the pool connected and monitored, its events printed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use console::Term;
use indicatif::{ProgressBar, ProgressStyle};
use mcp_conn_core::ConnectionConfig;
use mcp_conn_pool::{ConfigChanges, ConnectionPool, PoolEvent};
use tokio::sync::broadcast::error::RecvError;

use crate::check::{describe, pool_of};
use crate::explain;
use crate::hosts;
use crate::{status, Interrupt, Outcome, WatchArgs};

/// `HH:MM:SS` (UTC) now.
fn clock() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

fn summary(pool: &ConnectionPool) -> String {
    let h = pool.health_report();
    format!(
        "{} servers: {} connected, {} healthy, {} in error",
        h.total, h.connected, h.healthy, h.in_error
    )
}

/// Where lines go: above the summary line on a terminal, plain otherwise.
struct Screen {
    bar: Option<ProgressBar>,
}

impl Screen {
    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
    }

    fn summary(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.set_message(text),
            None => println!("{} {text}", clock()),
        }
    }
}

/// The contents of the files a config was read from, to see them change.
fn snapshot(loaded: &hosts::Loaded) -> Vec<Option<String>> {
    loaded
        .sources
        .iter()
        .map(|s| std::fs::read_to_string(&s.path).ok())
        .collect()
}

/// What a reload changed, in one line.
fn describe_changes(changes: &ConfigChanges) -> String {
    if changes.is_empty() {
        return "config reloaded: nothing to change".into();
    }
    let mut parts = Vec::new();
    for (what, names) in [
        ("added", &changes.added),
        ("removed", &changes.removed),
        ("changed", &changes.changed),
    ] {
        if !names.is_empty() {
            parts.push(format!("{what} {}", names.join(", ")));
        }
    }
    format!("config reloaded: {}", parts.join("; "))
}

/// Reads the configs again and applies them to the running pool (hot
/// reload: only what changed is touched).
async fn reload(args: &WatchArgs, pool: &ConnectionPool, timeout: Duration) -> String {
    let loaded = match hosts::load(&args.configs.configs, &ConnectionConfig::default()) {
        Ok(loaded) => loaded,
        Err(e) => {
            return format!("config change refused ({e}); the servers keep running as they were")
        }
    };
    let servers = loaded
        .entries
        .into_iter()
        .map(|entry| {
            let mut server = entry.server;
            server.connection = settings(server.connection, timeout);
            server
        })
        .collect();
    match pool.apply_servers(servers).await {
        Ok(changes) => describe_changes(&changes),
        Err(e) => format!("config change refused ({e}); the servers keep running as they were"),
    }
}

/// The servers' own settings (reconnects on), connecting within `timeout`.
fn settings(mut c: ConnectionConfig, timeout: Duration) -> ConnectionConfig {
    c.connection_timeout = timeout;
    c
}

pub(crate) async fn run(args: WatchArgs) -> Outcome {
    let timeout = args.configs.timeout();
    let loaded = hosts::load(&args.configs.configs, &ConnectionConfig::default())?;
    eprintln!("{}", loaded.describe());
    let mut files = snapshot(&loaded);
    let pool = pool_of(&loaded, 8, |c| settings(c, timeout))?;
    let mut interrupt = Interrupt::new();
    let mut events = pool.subscribe();
    let screen = Screen {
        bar: Term::stdout().is_term().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        }),
    };
    let outcomes = tokio::select! {
        outcomes = pool.connect_all() => outcomes,
        () = interrupt.recv() => {
            eprintln!("Interrupted: stopping every server");
            pool.shutdown().await;
            return Ok(std::process::ExitCode::from(130));
        }
    };
    for (name, outcome) in outcomes {
        match outcome {
            Ok(client) => screen.line(format!(
                "{} {name}: connected ({})",
                clock(),
                client
                    .server_info()
                    .map(|s| format!("{} {}", s.name, s.version))
                    .unwrap_or_default()
            )),
            Err(e) => {
                let url = loaded
                    .enabled()
                    .find(|entry| entry.server.name == name)
                    .and_then(|entry| describe(&entry.server.transport).1);
                let why = explain::error(&e, url.as_deref());
                screen.line(format!("{} {name}: FAILED: {}", clock(), why.reason));
            }
        }
    }
    // Connect events were printed above, from the outcomes.
    while events.try_recv().is_ok() {}
    pool.start_monitoring();
    screen.summary(summary(&pool));

    let stop = async {
        match args.duration {
            Some(s) => tokio::time::sleep(Duration::from_secs_f64(s)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop);
    let mut refresh = tokio::time::interval(Duration::from_secs(5));
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The config files are read again every second; a change is applied.
    let mut reread = tokio::time::interval(Duration::from_secs(1));
    reread.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let interrupted = loop {
        tokio::select! {
            () = interrupt.recv() => break true,
            () = &mut stop => break false,
            _ = refresh.tick() => {
                if screen.bar.is_some() {
                    screen.summary(summary(&pool));
                }
            }
            _ = reread.tick() => {
                let now = snapshot(&loaded);
                if now != files {
                    files = now;
                    let said = reload(&args, &pool, timeout).await;
                    screen.line(format!("{} {said}", clock()));
                    screen.summary(summary(&pool));
                }
            }
            event = events.recv() => match event {
                Ok(PoolEvent::StatusChanged { name, from, to }) => {
                    screen.line(format!("{} {name}: {from} -> {to}", clock()));
                    screen.summary(summary(&pool));
                }
                Ok(PoolEvent::Probed { name, ok: false, error, .. }) => {
                    screen.line(format!(
                        "{} {name}: probe failed: {}",
                        clock(),
                        error.unwrap_or_default()
                    ));
                    screen.summary(summary(&pool));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => screen.line(format!("({n} events missed)")),
                Err(RecvError::Closed) => break false,
            },
        }
    };
    if let Some(bar) = &screen.bar {
        bar.finish_and_clear();
    }
    if interrupted {
        eprintln!("Interrupted: stopping every server");
    }
    pool.shutdown().await;
    println!("{} stopped; {}", clock(), summary(&pool));
    Ok(status(true))
}
