//! Leak checks: file descriptors and processes, read from `/proc` (Linux).

use std::path::Path;

/// How many file descriptors this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The state letter of a process (`R`, `S`, `Z`, …), if it exists.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn is_alive(pid: i32) -> bool {
    matches!(state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// Waits (blocking, polling every 10 ms) until `pid` is no longer alive;
/// `false` if it still is after `within`. For a process killed without
/// waiting for its exit, which the kernel completes a moment later.
pub fn wait_dead(pid: i32, within: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while is_alive(pid) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

/// Whether `pid` exists in any state, zombies included.
pub fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The direct children of `pid`, zombies included.
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| parent(*p) == Some(pid))
        .collect()
}

/// The direct children of this process, zombies included.
pub fn my_children() -> Vec<i32> {
    children_of(std::process::id() as i32)
}

/// Reads a pid file written by the fake server (`FAKE_MCP_PIDFILE`):
/// `(server pid, grandchild pid if any)`.
pub fn read_pidfile(path: &Path) -> Option<(i32, Option<i32>)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut server = None;
    let mut grandchild = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("pid", n)) => server = n.trim().parse().ok(),
            Some(("grandchild", n)) => grandchild = n.trim().parse().ok(),
            _ => {}
        }
    }
    Some((server?, grandchild))
}

/// Live processes whose command line contains `needle`.
pub fn processes_matching(needle: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .filter(|pid| is_alive(*pid))
        .collect()
}
