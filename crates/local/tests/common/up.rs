//! A real `energy up` process on a free loopback port, for tests and the benchmark.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `energy` binary of this build, or the one `ENERGY_BIN` names (a benchmark's baseline: an
/// older build measured in the same run).
pub fn energy() -> Command {
    match std::env::var_os("ENERGY_BIN") {
        Some(bin) => Command::new(bin),
        None => Command::new(env!("CARGO_BIN_EXE_energy")),
    }
}

/// A benchmark's `--name N` argument, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fresh data dir under the system's temp dir.
pub fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "energy-test-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub struct Up {
    child: Child,
    pub base: String,
    pub dir: PathBuf,
}

/// Starts `energy up --port 0 --data-dir DIR --quiet ARGS` and waits for its address; on
/// failure returns the exit code and what it printed.
pub fn try_start(dir: &Path, args: &[&str]) -> Result<Up, (Option<i32>, String)> {
    try_start_with(dir, args, None)
}

/// The same with `SLACK_WEBHOOK_URL` set (or not).
pub fn try_start_with(
    dir: &Path,
    args: &[&str],
    slack: Option<&str>,
) -> Result<Up, (Option<i32>, String)> {
    let env: Vec<(&str, &str)> = slack
        .map(|url| ("SLACK_WEBHOOK_URL", url))
        .into_iter()
        .collect();
    try_start_env(dir, args, &env)
}

/// The same with these environment variables set (and no other `SLACK_WEBHOOK_URL` or
/// `ENERGY_CRASH_AT` than theirs).
pub fn try_start_env(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Up, (Option<i32>, String)> {
    let mut command = energy();
    command
        .args(["up", "--port", "0", "--quiet", "--data-dir"])
        .arg(dir)
        .args(args)
        .env_remove("SLACK_WEBHOOK_URL")
        .env_remove("ENERGY_CRASH_AT")
        .envs(env.iter().copied());
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn energy up");
    let stdout = child.stdout.take().expect("stdout");
    // Drained as it comes, so a chatty stack never blocks on a full pipe.
    let mut stderr = child.stderr.take().expect("stderr");
    let drain = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stderr.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.trim().to_string());
                sent = true;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(base) = rx.recv_timeout(Duration::from_millis(50)) {
            return Ok(Up {
                child,
                base,
                dir: dir.to_path_buf(),
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            // The process is gone: its stderr is at its end.
            let err = drain.join().unwrap_or_default();
            return Err((status.code(), err));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("energy up did not print its address within 30 s");
        }
    }
}

pub fn start(dir: &Path, args: &[&str]) -> Up {
    try_start(dir, args).unwrap_or_else(|(code, err)| panic!("energy up exited {code:?}: {err}"))
}

impl Up {
    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `within` for the process to end on its own; its exit status, or `None` if it
    /// still runs.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait, as Ctrl-C would.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("wait for energy up")
    }

    /// The CPU time the process has used so far (user and system, from `/proc`; Linux's
    /// USER_HZ of 100 ticks a second), or `None` where there is no `/proc`.
    pub fn cpu_seconds(&self) -> Option<f64> {
        stat_cpu_seconds(&format!("/proc/{}/stat", self.child.id()))
    }

    /// The CPU time the process's thread named `name` has used so far (as
    /// [`Up::cpu_seconds`]), or `None` where there is no such thread or no `/proc`.
    pub fn thread_cpu_seconds(&self, name: &str) -> Option<f64> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).ok()?;
        tasks.flatten().find_map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            (comm.trim_end() == name)
                .then(|| stat_cpu_seconds(&task.path().join("stat").to_string_lossy()))
                .flatten()
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The user and system CPU seconds of a `/proc` `stat` file.
fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an `energy` command against a data dir; (exit code, stdout, stderr).
pub fn cli(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = energy()
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run energy");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every archived event of a data dir.
pub fn archive(dir: &Path) -> Vec<Value> {
    let (code, out, err) = cli(dir, &["events", "list", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON event"))
        .collect()
}

/// Every result object under `<dir>/results`, by key (`results/...`).
pub fn result_keys(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, p: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push(format!("results/{rel}"));
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("results"), &dir.join("results"), &mut out);
    out.sort();
    out
}

/// The notifications log's lines.
pub fn notifications(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("notifications.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// GETs each order until all are final; their bodies.
pub async fn wait_final(
    http: &reqwest::Client,
    up: &Up,
    ids: &[String],
    within: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let mut bodies = Vec::new();
        for id in ids {
            let r = http.get(up.url(&format!("/orders/{id}"))).send().await;
            if let Ok(r) = r
                && r.status().is_success()
            {
                bodies.push(r.json::<Value>().await.unwrap_or(Value::Null));
            }
        }
        if bodies.len() == ids.len() && bodies.iter().all(|b| b["final"] == true) {
            return bodies;
        }
        if Instant::now() > deadline {
            let states: Vec<String> = bodies
                .iter()
                .map(|b| format!("{} {}", b["record_id"], b["state"]))
                .collect();
            panic!("not every order final within {within:?}: {states:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
pub const SAMPLE_FILE: &str = include_str!("../../../../events-schema/api/examples/orders.json");
