//! A loopback implementation of the Lambda Runtime API (2018-06-01), enough to run one function
//! process: it hands out one event, records the response or error document, and holds every
//! later `next` request open, as Lambda does between invocations. It also measures what a cold
//! start costs: process start to the first `next`, and the first invocation's duration.

#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// What the function did with its one event.
#[derive(Debug, Clone)]
pub enum Answer {
    Response(Value),
    Error(Value),
    /// The process posted an init error or exited before asking for work.
    InitError(String),
}

/// One cold start and invocation.
#[derive(Debug, Clone)]
pub struct Run {
    pub answer: Answer,
    /// Process start to the first `GET /next`.
    pub init: Duration,
    /// Event handed out to the answer received.
    pub invocation: Duration,
    /// Peak resident set (VmHWM) after the answer, in KiB.
    pub peak_rss_kib: u64,
    pub stdout: String,
}

#[derive(Default)]
struct State {
    first_next: Option<Instant>,
    handed_out: Option<Instant>,
    answered: Option<(Instant, Answer)>,
}

struct Emulator {
    event: Value,
    state: Mutex<State>,
    done: Notify,
}

async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if stream.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        stream.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((method, path, body))
}

async fn reply(
    stream: &mut BufReader<TcpStream>,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) {
    let mut head = format!("HTTP/1.1 {status} OK\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let s = stream.get_mut();
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body).await;
}

async fn serve_connection(emulator: Arc<Emulator>, stream: TcpStream) {
    let mut stream = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut stream).await {
        let now = Instant::now();
        match (method.as_str(), path.as_str()) {
            ("GET", "/2018-06-01/runtime/invocation/next") => {
                let first = {
                    let mut s = emulator.state.lock().unwrap();
                    s.first_next.get_or_insert(now);
                    s.handed_out.is_none()
                };
                if !first {
                    // Lambda freezes the process here; hold the request until the test ends.
                    std::future::pending::<()>().await;
                }
                let deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis();
                let body = emulator.event.to_string();
                emulator.state.lock().unwrap().handed_out = Some(Instant::now());
                reply(
                    &mut stream,
                    200,
                    &[
                        ("content-type", "application/json".into()),
                        ("lambda-runtime-aws-request-id", "req-1".into()),
                        ("lambda-runtime-deadline-ms", deadline.to_string()),
                        (
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:eu-west-1:123456789012:function:energy".into(),
                        ),
                        (
                            "lambda-runtime-trace-id",
                            "Root=1-00000000-000000000000000000000000".into(),
                        ),
                    ],
                    body.as_bytes(),
                )
                .await;
            }
            ("POST", p)
                if p.ends_with("/response")
                    || p.ends_with("/error")
                    || p.ends_with("/init/error") =>
            {
                let doc: Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
                let answer = if p.ends_with("/init/error") {
                    Answer::InitError(doc.to_string())
                } else if p.ends_with("/error") {
                    Answer::Error(doc)
                } else {
                    Answer::Response(doc)
                };
                emulator
                    .state
                    .lock()
                    .unwrap()
                    .answered
                    .get_or_insert((now, answer));
                reply(&mut stream, 202, &[], b"{\"status\":\"OK\"}").await;
                emulator.done.notify_waiters();
                emulator.done.notify_one();
            }
            _ => reply(&mut stream, 404, &[], b"{}").await,
        }
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Starts `program args...` with `env` against a fresh emulator holding `event`, waits for its
/// answer (or its exit), stops it.
pub async fn invoke(program: &Path, args: &[&str], env: &[(&str, String)], event: Value) -> Run {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the runtime API");
    let addr = listener.local_addr().unwrap();
    let emulator = Arc::new(Emulator {
        event,
        state: Mutex::new(State::default()),
        done: Notify::new(),
    });
    let server = {
        let emulator = emulator.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(emulator.clone(), stream));
            }
        })
    };
    let started = Instant::now();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "energy")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let pid = child.id().unwrap_or(0);
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if emulator.state.lock().unwrap().answered.is_some() {
                return None;
            }
            tokio::select! {
                _ = emulator.done.notified() => {}
                status = child.wait() => return Some(status),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    })
    .await
    .expect("the function answered within 30 s");
    let peak = peak_rss_kib(pid);
    let _ = child.start_kill();
    let output = child.wait_with_output().await.expect("collect output");
    server.abort();
    let stdout = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let state = emulator.state.lock().unwrap();
    let init = state.first_next.map_or(Duration::ZERO, |t| t - started);
    match (&state.answered, waited) {
        (Some((at, answer)), _) => Run {
            answer: answer.clone(),
            init,
            invocation: state.handed_out.map_or(Duration::ZERO, |h| *at - h),
            peak_rss_kib: peak,
            stdout,
        },
        (None, status) => Run {
            answer: Answer::InitError(format!("exited ({status:?}) without answering")),
            init,
            invocation: Duration::ZERO,
            peak_rss_kib: peak,
            stdout,
        },
    }
}
