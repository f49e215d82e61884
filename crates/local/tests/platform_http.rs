//! `HttpPlatform` against `energy platform serve` on a loopback port, and against servers that
//! fail: 503s, silence, refusals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use energy_auction::http::client::{HttpPlatform, HttpPlatformConfig};
use energy_auction::sim::{SimConfig, SimPlatform};
use energy_core::memory::ManualClock;
use energy_core::order::Order;
use energy_core::ports::{AuctionPlatform, ResultsStatus, Retryable, Submission};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const START: &str = "2026-01-14T09:00:00Z";

/// `energy platform serve` on a free port, killed when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(extra: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_energy"))
            .args([
                "platform", "serve", "--port", "0", "--speed", "0", "--start", START,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start energy platform serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the address");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Served { child, url }
    }

    async fn set_clock(&self, now: &str) {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/simulation/clock", self.url))
            .json(&json!({"now": now}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn orders() -> Vec<Order> {
    let mk = |id: &str, zone: &str, side: &str, steps: serde_json::Value| -> Order {
        serde_json::from_value(json!({
            "record_id": id, "market": "SDAC", "delivery_date": "2026-01-15", "zone": zone, "portfolio": "P", "side": side,
            "periods": [
                {"mtu_start": "2026-01-15T06:00:00Z", "steps": steps},
                {"mtu_start": "2026-01-15T11:00:00Z", "steps": steps}
            ]
        }))
        .unwrap()
    };
    vec![
        mk(
            "h-1",
            "DE-LU",
            "BUY",
            json!([{"price": "3000.00", "quantity": "10.0"}]),
        ),
        mk(
            "h-2",
            "NL",
            "BUY",
            json!([{"price": "500.00", "quantity": "5.0"}, {"price": "1.00", "quantity": "2.5"}]),
        ),
        mk(
            "h-3",
            "BE",
            "SELL",
            json!([{"price": "3500.00", "quantity": "20.0"}]),
        ),
    ]
}

fn client(url: &str, timeout: Duration, attempts: u32) -> HttpPlatform {
    let mut config = HttpPlatformConfig::new(url);
    config.timeout = timeout;
    config.max_attempts = attempts;
    config.backoff = Duration::from_millis(20);
    HttpPlatform::new(config).unwrap()
}

#[tokio::test]
async fn http_platform_against_energy_platform_serve_returns_what_the_in_process_simulator_returns()
{
    let served = Served::start(&[]);
    let http = client(&served.url, Duration::from_secs(5), 3);
    let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let local = SimPlatform::new(SimConfig::default(), clock.clone());
    // What an exchange refuses is refused over HTTP too, with the same reason.
    let mut bad = orders()[0].clone();
    bad.record_id = energy_core::order::RecordId::parse("h-bad").unwrap();
    bad.periods[0].steps[0].price = energy_core::money::PriceCents(9_999_900);
    let mut off_grid = orders()[0].clone();
    off_grid.record_id = energy_core::order::RecordId::parse("h-grid").unwrap();
    off_grid.periods[0].mtu_start = "2026-01-15T08:07:00Z".parse().unwrap();
    for (o, says) in [(&bad, "price 99999.00"), (&off_grid, "08:07:00Z")] {
        let remote = http.submit(o).await.unwrap();
        let local = local.submit(o).await.unwrap();
        let (Submission::Refused { reason: remote }, Submission::Refused { reason: local }) =
            (&remote, &local)
        else {
            panic!("{remote:?} / {local:?}")
        };
        assert!(local.contains(says), "{local}");
        assert_eq!(
            remote,
            &format!("InvalidOrder: {local}"),
            "over HTTP: 422 InvalidOrder"
        );
    }
    for o in orders() {
        let remote = http.submit(&o).await.unwrap();
        assert_eq!(remote, local.submit(&o).await.unwrap());
        assert!(matches!(
            http.results(&o).await.unwrap(),
            ResultsStatus::NotYet { .. }
        ));
    }
    // Preliminary results first (12:45 Brussels time), then the final ones (13:00).
    served.set_clock("2026-01-14T11:50:00Z").await;
    clock.set("2026-01-14T11:50:00Z".parse().unwrap());
    for o in orders() {
        let remote = http.results(&o).await.unwrap();
        assert_eq!(remote, local.results(&o).await.unwrap());
        assert!(
            matches!(remote, ResultsStatus::Preliminary { .. }),
            "{remote:?}"
        );
    }
    served.set_clock("2026-01-14T12:00:00Z").await;
    clock.set("2026-01-14T12:00:00Z".parse().unwrap());
    let mut outcomes = Vec::new();
    for o in orders() {
        let remote = http.results(&o).await.unwrap();
        assert_eq!(remote, local.results(&o).await.unwrap());
        let ResultsStatus::Published(r) = remote else {
            panic!("{remote:?}")
        };
        outcomes.push(r.outcome);
    }
    assert_eq!(
        serde_json::to_value(&outcomes).unwrap(),
        json!(["ACCEPTED", "PARTIALLY_ACCEPTED", "REJECTED"])
    );
    // After the gate the platform refuses new orders, over HTTP as in process.
    let mut late = orders()[0].clone();
    late.record_id = energy_core::order::RecordId::parse("h-late").unwrap();
    assert!(matches!(
        http.submit(&late).await.unwrap(),
        Submission::Refused { .. }
    ));
    let mut unknown = orders()[0].clone();
    unknown.record_id = energy_core::order::RecordId::parse("h-unknown").unwrap();
    assert!(matches!(
        http.results(&unknown).await.unwrap(),
        ResultsStatus::Unknown { .. }
    ));
}

#[tokio::test]
async fn a_decoupled_zone_answers_over_http_as_in_process_withdrawn_then_a_later_final_result() {
    let served = Served::start(&["--decouple", "DE-LU"]);
    let http = client(&served.url, Duration::from_secs(5), 3);
    let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let local = SimPlatform::new(SimConfig::default(), clock.clone());
    local.decouple(energy_core::market::Zone::DeLu);
    let o = orders()[0].clone();
    assert_eq!(o.zone, energy_core::market::Zone::DeLu);
    assert_eq!(
        http.submit(&o).await.unwrap(),
        local.submit(&o).await.unwrap()
    );
    let mut answers = Vec::new();
    for now in [
        "2026-01-14T11:50:00Z",
        "2026-01-14T12:00:00Z",
        "2026-01-14T13:40:00Z",
    ] {
        served.set_clock(now).await;
        clock.set(now.parse().unwrap());
        let remote = http.results(&o).await.unwrap();
        assert_eq!(remote, local.results(&o).await.unwrap(), "at {now}");
        answers.push(remote);
    }
    assert!(
        matches!(answers[0], ResultsStatus::Preliminary { .. }),
        "{answers:?}"
    );
    assert_eq!(
        answers[1],
        ResultsStatus::NotYet {
            expected_publication: Some("2026-01-14T13:40:00Z".parse().unwrap())
        },
        "withdrawn"
    );
    assert!(
        matches!(answers[2], ResultsStatus::Published(_)),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_platform_that_wants_a_key_refuses_a_client_without_one_with_a_message_saying_so() {
    let served = Served::start(&["--api-key", "s3cret"]);
    let err = client(&served.url, Duration::from_secs(5), 3)
        .submit(&orders()[0])
        .await
        .unwrap_err();
    assert!(!err.retryable(), "{err}");
    assert!(
        err.to_string().contains("401") && err.to_string().contains("X-Api-Key"),
        "{err}"
    );
    let mut config = HttpPlatformConfig::new(&served.url);
    config.api_key = Some("s3cret".into());
    let with_key = HttpPlatform::new(config).unwrap();
    assert!(matches!(
        with_key.submit(&orders()[0]).await.unwrap(),
        Submission::Accepted { .. }
    ));
}

/// Reads one whole HTTP/1.1 request (head, then `content-length` bytes of body), however the
/// client's writes are split into segments; gives up at the end of the stream.
async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while got.len() < head_end + length {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A one-route server: answers the n-th request with `answer(n)`, or never when it is `None`.
async fn scripted(
    answer: impl Fn(usize) -> Option<(u16, String)> + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            let answer = answer.clone();
            tokio::spawn(async move {
                read_request(&mut socket).await;
                match answer(n) {
                    Some((status, body)) => {
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(reply.as_bytes()).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    (url, count)
}

#[tokio::test]
async fn a_server_that_answers_503_twice_then_200_is_retried_to_success() {
    let ok = json!({"auctionId": "SDAC-2026-01-15", "orderId": "h-1", "status": "NOT_PUBLISHED", "expectedPublication": "2026-01-14T11:45:00Z"});
    let (url, count) = scripted(move |n| {
        Some(if n <= 2 {
            (503, r#"{"error":"Busy","message":"try later"}"#.into())
        } else {
            (200, ok.to_string())
        })
    })
    .await;
    let status = client(&url, Duration::from_secs(2), 4)
        .results(&orders()[0])
        .await
        .unwrap();
    assert_eq!(
        status,
        ResultsStatus::NotYet {
            expected_publication: Some("2026-01-14T11:45:00Z".parse().unwrap())
        }
    );
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_server_that_never_answers_hits_the_timeout_and_yields_a_retryable_error() {
    let (url, count) = scripted(|_| None).await;
    let err = client(&url, Duration::from_millis(150), 2)
        .results(&orders()[0])
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    assert!(err.to_string().contains("no answer within"), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unexpected_status_is_an_error_that_says_what_the_platform_answered() {
    let (url, count) = scripted(|_| {
        Some((
            418,
            r#"{"error":"Teapot","message":"short and stout"}"#.into(),
        ))
    })
    .await;
    let err = client(&url, Duration::from_secs(2), 4)
        .results(&orders()[0])
        .await
        .unwrap_err();
    assert!(!err.retryable());
    assert!(
        err.to_string().contains("418") && err.to_string().contains("Teapot: short and stout"),
        "{err}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1, "not retried");
}
