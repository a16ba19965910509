//! A fake MCP server over stdio, with fault modes.
//!
//! Tools: `echo {text}`, `add {a, b}`, `sleep {ms}` (answers after `ms`
//! milliseconds, without blocking other requests), `env {name}` (the value of
//! an environment variable; a tool error if unset) and `fail` (a tool error).
//!
//! Modes (first argument, or `FAKE_MCP_MODE`):
//!
//! | mode | behaviour |
//! |---|---|
//! | `normal` | answers everything at once; exits on stdin EOF |
//! | `crash-after N` | exits with status 3 (and a stderr line) on the (N+1)-th request after `initialize` (the era probe `server/discover` not counted), unanswered |
//! | `hang` | reads everything, answers nothing |
//! | `ping-only` | answers `initialize` and `ping`, nothing else |
//! | `garbage` | writes junk lines before every answer |
//! | `oversized N` | writes a line of N bytes (default 1 MiB) before every answer |
//! | `close-stdout` | closes stdout after `notifications/initialized`, keeps running |
//! | `exit-during-initialize` | writes to stderr and exits with status 1 on `initialize` |
//! | `ignore-sigterm` | ignores SIGTERM and stdin EOF (only SIGKILL ends it) |
//! | `spawn-grandchild` | starts `sleep 1000` in its process group first |
//! | `flood-stderr` | writes 32 MiB to stderr while serving |
//! | `slow-drip` | writes each answer a few bytes at a time |
//! | `reject-version` | answers `initialize` with protocol version 1999-01-01 |
//! | `stateless` | speaks only the 2026-07-28 era (see `fake_stateless`; versions from `FAKE_MCP_VERSIONS`) |
//!
//! With `FAKE_MCP_PIDFILE=path`, it writes `pid N` (and `grandchild N`) there.
//! With `FAKE_MCP_STARTLOG=path`, it appends a line `start N` there each time
//! it starts, so a test can count starts.

use std::io::{BufRead, BufWriter, Write};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// A fault mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Answers everything at once.
    Normal,
    /// Exits after answering N requests (after `initialize`).
    CrashAfter(u64),
    /// Never answers.
    Hang,
    /// Answers only `initialize` and `ping`.
    PingOnly,
    /// Junk lines before every answer.
    Garbage,
    /// An oversized line (of this many bytes) before every answer.
    Oversized(usize),
    /// Closes stdout after the handshake, keeps running.
    CloseStdout,
    /// Exits with status 1 on `initialize`.
    ExitDuringInitialize,
    /// Ignores SIGTERM and stdin EOF.
    IgnoreSigterm,
    /// Starts a grandchild first.
    SpawnGrandchild,
    /// Floods stderr.
    FloodStderr,
    /// Writes answers slowly.
    SlowDrip,
    /// Answers `initialize` with an unsupported version.
    RejectVersion,
    /// Speaks the stateless era (2026-07-28) only; see `fake_stateless`.
    Stateless,
}

impl Mode {
    /// Parses `mode [arg]`.
    pub fn parse(spec: &str) -> Result<Mode, String> {
        let mut words = spec.split_whitespace();
        let name = words.next().unwrap_or("normal");
        let arg = words.next();
        let number = |default: u64| -> Result<u64, String> {
            arg.map_or(Ok(default), |a| {
                a.parse().map_err(|_| format!("not a number: {a}"))
            })
        };
        Ok(match name {
            "normal" => Mode::Normal,
            "crash-after" => Mode::CrashAfter(number(1)?),
            "hang" => Mode::Hang,
            "ping-only" => Mode::PingOnly,
            "garbage" => Mode::Garbage,
            "oversized" => {
                Mode::Oversized(usize::try_from(number(1 << 20)?).map_err(|e| e.to_string())?)
            }
            "close-stdout" => Mode::CloseStdout,
            "exit-during-initialize" => Mode::ExitDuringInitialize,
            "ignore-sigterm" => Mode::IgnoreSigterm,
            "spawn-grandchild" => Mode::SpawnGrandchild,
            "flood-stderr" => Mode::FloodStderr,
            "slow-drip" => Mode::SlowDrip,
            "reject-version" => Mode::RejectVersion,
            "stateless" => Mode::Stateless,
            other => return Err(format!("unknown mode {other:?}")),
        })
    }
}

/// Runs the server with the mode from the arguments or `FAKE_MCP_MODE`;
/// returns the exit code.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let spec = if args.is_empty() {
        std::env::var("FAKE_MCP_MODE").unwrap_or_default()
    } else {
        args.join(" ")
    };
    match Mode::parse(&spec) {
        Ok(mode) => run(mode),
        Err(e) => {
            eprintln!("fake-mcp-server: {e}");
            2
        }
    }
}

type Out = Arc<Mutex<BufWriter<std::io::Stdout>>>;

fn tools() -> Value {
    json!([
        {"name": "echo", "description": "Returns its text", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
        {"name": "add", "description": "Adds a and b", "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}},
        {"name": "sleep", "description": "Answers after ms milliseconds", "inputSchema": {"type": "object", "properties": {"ms": {"type": "integer"}}}},
        {"name": "env", "description": "Returns an environment variable", "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}}},
        {"name": "fail", "description": "Always reports a tool error", "inputSchema": {"type": "object"}}
    ])
}

fn text_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}]})
}

/// Runs the server until stdin ends (or forever, in some modes).
pub fn run(mode: Mode) -> i32 {
    if let Some(log) = std::env::var_os("FAKE_MCP_STARTLOG") {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| writeln!(f, "start {}", std::process::id()));
        if let Err(e) = appended {
            eprintln!("fake-mcp-server: cannot write the start log: {e}");
        }
    }
    let pidfile = std::env::var_os("FAKE_MCP_PIDFILE");
    let mut pids = format!("pid {}\n", std::process::id());
    if mode == Mode::IgnoreSigterm {
        // A handler that only sets a flag: SIGTERM no longer ends the process.
        let _ = signal_hook::flag::register(
            signal_hook::consts::SIGTERM,
            Arc::new(AtomicBool::new(false)),
        );
    }
    if mode == Mode::SpawnGrandchild {
        match std::process::Command::new("sleep").arg("1000").spawn() {
            Ok(child) => pids.push_str(&format!("grandchild {}\n", child.id())),
            Err(e) => eprintln!("fake-mcp-server: could not spawn a grandchild: {e}"),
        }
    }
    if let Some(path) = pidfile {
        let _ = std::fs::write(path, &pids);
    }
    if mode == Mode::FloodStderr {
        std::thread::spawn(|| {
            let line = "x".repeat(8191);
            let mut err = std::io::stderr().lock();
            for _ in 0..4096 {
                if writeln!(err, "{line}").is_err() {
                    break;
                }
            }
        });
    }

    let out: Out = Arc::new(Mutex::new(BufWriter::with_capacity(
        64 * 1024,
        std::io::stdout(),
    )));
    let mut served: u64 = 0;
    let mut stdout_open = true;
    let mut line = String::new();
    let mut input = std::io::BufReader::with_capacity(64 * 1024, std::io::stdin());
    loop {
        if input.buffer().is_empty() {
            // About to block on input: send what is buffered first.
            let _ = out.lock().unwrap_or_else(PoisonError::into_inner).flush();
        }
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if mode == Mode::Hang {
            continue;
        }
        if mode == Mode::Normal && stdout_open && fast_echo(&out, line.trim_end()) {
            continue;
        }
        let Ok(msg) = serde_json::from_str::<Value>(line.trim_end()) else {
            continue;
        };
        let method = msg["method"].as_str().unwrap_or_default();
        let Some(id) = msg.get("id").cloned() else {
            if method == "notifications/initialized" && mode == Mode::CloseStdout {
                close_stdout(&out);
                stdout_open = false;
            }
            continue;
        };
        if method.is_empty() || !stdout_open {
            continue; // a response to us, or nowhere to answer
        }
        let params = msg.get("params").cloned().unwrap_or(Value::Null);
        if mode == Mode::Stateless {
            if let Some(mut reply) = crate::fake_stateless::handle(method, &params) {
                reply["jsonrpc"] = json!("2.0");
                reply["id"] = id.clone();
                let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = writeln!(out, "{reply}");
                continue;
            }
        }
        if method != "initialize" && method != "server/discover" {
            if let Mode::CrashAfter(n) = mode {
                if served >= n {
                    eprintln!("fake-mcp-server: crashing after {n} requests");
                    std::process::exit(3);
                }
            }
            served += 1;
        }
        let result: Result<Value, (i64, String)> = match method {
            "initialize" => {
                if mode == Mode::ExitDuringInitialize {
                    eprintln!("fake-mcp-server: cannot start: FAKE_API_KEY is not set");
                    return 1;
                }
                let version = if mode == Mode::RejectVersion {
                    "1999-01-01"
                } else {
                    params["protocolVersion"].as_str().unwrap_or("2025-11-25")
                };
                Ok(json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": true}, "logging": {}},
                    "serverInfo": {"name": "fake-mcp-server", "version": env!("CARGO_PKG_VERSION")},
                }))
            }
            "ping" => Ok(json!({})),
            // A handshake-era server: the era probe is an unknown method.
            "server/discover" => Err((-32601, "method not found: server/discover".into())),
            _ if mode == Mode::PingOnly => continue,
            "tools/list" => Ok(json!({"tools": tools()})),
            "tools/call" => {
                let args = &params["arguments"];
                match params["name"].as_str().unwrap_or_default() {
                    "echo" => Ok(text_result(args["text"].as_str().unwrap_or_default())),
                    "add" => {
                        let sum =
                            args["a"].as_f64().unwrap_or(0.0) + args["b"].as_f64().unwrap_or(0.0);
                        Ok(text_result(&sum.to_string()))
                    }
                    "env" => {
                        let name = args["name"].as_str().unwrap_or_default();
                        match std::env::var(name) {
                            Ok(v) => Ok(text_result(&v)),
                            Err(_) => Ok(
                                json!({"content": [{"type": "text", "text": format!("{name} is not set")}], "isError": true}),
                            ),
                        }
                    }
                    "fail" => Ok(
                        json!({"content": [{"type": "text", "text": "the tool failed"}], "isError": true}),
                    ),
                    "sleep" => {
                        let ms = args["ms"].as_u64().unwrap_or(0);
                        let out = out.clone();
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_millis(ms));
                            answer(
                                &out,
                                mode,
                                &id,
                                Ok(text_result(&format!("slept {ms} ms"))),
                                true,
                            );
                        });
                        continue;
                    }
                    other => Err((-32602, format!("unknown tool: {other}"))),
                }
            }
            other => Err((-32601, format!("method not found: {other}"))),
        };
        answer(&out, mode, &id, result, false);
    }
    if matches!(mode, Mode::IgnoreSigterm | Mode::CloseStdout) {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    0
}

/// Writes one answer. With `flush` false the bytes stay buffered: the main
/// loop flushes once its input is drained, so a burst of requests is
/// answered with one write.
fn answer(out: &Out, mode: Mode, id: &Value, result: Result<Value, (i64, String)>, flush: bool) {
    let msg = match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
    };
    let mut bytes = msg.to_string().into_bytes();
    bytes.push(b'\n');
    let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = match mode {
        Mode::Garbage => {
            out.write_all(b"this line is not json\n{\"not\": \"json-rpc\"}\n\x00\xff\xfe binary\n")
        }
        Mode::Oversized(n) => {
            let mut junk = vec![b'x'; n];
            junk.push(b'\n');
            out.write_all(&junk)
        }
        _ => Ok(()),
    };
    if mode == Mode::SlowDrip {
        for chunk in bytes.chunks(7) {
            let _ = out.write_all(chunk).and_then(|()| out.flush());
            std::thread::sleep(Duration::from_millis(2));
        }
        return;
    }
    let _ = out.write_all(&bytes);
    if flush {
        let _ = out.flush();
    }
}

/// Closes file descriptor 1 so the client sees EOF while this process runs on.
#[allow(unsafe_code)]
fn close_stdout(out: &Out) {
    let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = out.flush();
    // SAFETY: fd 1 is this process's stdout; nothing writes to it after this
    // (the caller stops answering), and closing a descriptor has no memory
    // effects.
    unsafe {
        libc::close(1);
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EchoArgs<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

/// The fast path for `tools/call echo` (what the benchmark measures): no
/// JSON tree, the id copied as it came. Returns false to fall back to the
/// general path.
fn fast_echo(out: &Out, line: &str) -> bool {
    let Ok(env) = serde_json::from_str::<Envelope<'_>>(line) else {
        return false;
    };
    let (Some(id), Some("tools/call"), Some(params)) = (env.id, env.method.as_deref(), env.params)
    else {
        return false;
    };
    let Ok(call) = serde_json::from_str::<CallParams<'_>>(params.get()) else {
        return false;
    };
    if call.name != "echo" {
        return false;
    }
    let text = call
        .arguments
        .and_then(|a| serde_json::from_str::<EchoArgs<'_>>(a.get()).ok())
        .and_then(|a| a.text)
        .unwrap_or_default();
    let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = write!(
        out,
        "{{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":",
        id.get()
    );
    let _ = serde_json::to_writer(&mut *out, &text);
    let _ = out.write_all(b"}]}}\n");
    true
}
