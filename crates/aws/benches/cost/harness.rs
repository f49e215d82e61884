//! The stand-ins around the handlers: each function's SDK clients with the meter's
//! interceptor, Lambda's billing of an invocation (timing, cold starts, log bytes), the span
//! `energy_aws::lambda::run_events` wraps an invocation in, a Slack webhook on loopback, the
//! firing of one-time schedules as EventBridge Scheduler does it, and the order mix.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use energy_aws::dynamodb::DynamoOrderStore;
use energy_aws::eventbridge::EventBridgePublisher;
use energy_core::handler::{Event, EventHandler};
use energy_core::ports::{EventPublisher, Retryable};
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::Instrument;

use crate::meter::{LogMeter, Meter};
use crate::prices::Fallible;
use crate::support::{BUS, GROUP, TABLE};

/// One function's invocations as Lambda would bill them.
#[derive(Debug, Clone, Default)]
pub struct Function {
    pub memory_mb: u32,
    pub invocations: u64,
    pub billed_ms: u64,
    pub cold_starts: u64,
    pub log_bytes: u64,
    pub log_lines: u64,
}

/// Times invocations, counts cold starts and the bytes each function logs.
pub struct Lambdas {
    pub per_container: u64,
    pub logs: LogMeter,
    pub functions: BTreeMap<&'static str, Function>,
}

impl Lambdas {
    /// Whether the next invocation of `name` starts a new container.
    pub fn next_is_cold(&self, name: &str) -> bool {
        self.functions
            .get(name)
            .is_none_or(|f| f.invocations % self.per_container == 0)
    }

    pub async fn invoke<T>(
        &mut self,
        name: &'static str,
        memory_mb: u32,
        run: impl Future<Output = T>,
    ) -> T {
        let cold = self.next_is_cold(name);
        let (bytes, lines) = self.logs.read();
        let started = Instant::now();
        let out = run.await;
        let took = started.elapsed();
        let (bytes_after, lines_after) = self.logs.read();
        let f = self.functions.entry(name).or_default();
        f.memory_mb = memory_mb;
        f.invocations += 1;
        f.billed_ms += billed_ms(took);
        f.cold_starts += u64::from(cold);
        f.log_bytes += bytes_after - bytes;
        f.log_lines += lines_after - lines;
        out
    }
}

/// Lambda bills each invocation rounded up to the millisecond.
fn billed_ms(d: Duration) -> u64 {
    d.as_micros().div_ceil(1000).max(1) as u64
}

static REQUESTS: AtomicU64 = AtomicU64::new(1);

pub fn request_id() -> String {
    let n = REQUESTS.fetch_add(1, Ordering::Relaxed);
    format!("{:08x}-2b1a-4c3d-9e8f-{:012x}", n, n * 7919)
}

/// An EventBridge-triggered handler inside the span and log lines `energy_aws::lambda::run_events`
/// gives it, so the log bytes are the deployed function's.
pub async fn run_event<H: EventHandler>(handler: &H, event: Event) -> Fallible<String> {
    let span = tracing::info_span!(
        "event",
        function = H::NAME,
        event_id = event.id.as_deref().unwrap_or("-"),
        detail_type = %event.detail_type,
        record_id = event.detail["record_id"].as_str().unwrap_or("-"),
        request_id = %request_id(),
    );
    async move {
        match handler.handle(event).await {
            Ok(outcome) => {
                let outcome = outcome.to_string();
                tracing::info!(%outcome, "handled");
                Ok(outcome)
            }
            Err(e) => {
                tracing::error!(error = %e, retryable = e.retryable(), "failed");
                Err(format!("{}: {e}", H::NAME).into())
            }
        }
    }
    .instrument(span)
    .await
}

/// The clients of one function, each with the meter's interceptor.
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub s3: aws_sdk_s3::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

pub fn clients(sdk: &SdkConfig, meter: &Meter, who: &'static str) -> Clients {
    Clients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .interceptor(meter.tap(who))
                .build(),
        ),
        events: aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(sdk)
                .interceptor(meter.tap(who))
                .build(),
        ),
        scheduler: aws_sdk_scheduler::Client::from_conf(
            aws_sdk_scheduler::config::Builder::from(sdk)
                .interceptor(meter.tap(who))
                .build(),
        ),
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(true)
                .interceptor(meter.tap(who))
                .build(),
        ),
        secrets: aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(sdk)
                .interceptor(meter.tap(who))
                .build(),
        ),
    }
}

impl Clients {
    pub fn orders(&self) -> Arc<DynamoOrderStore> {
        Arc::new(DynamoOrderStore::new(self.dynamodb.clone(), TABLE))
    }

    pub fn bus(&self) -> Arc<dyn EventPublisher> {
        Arc::new(EventBridgePublisher::new(self.events.clone(), BUS))
    }
}

/// A Slack webhook on loopback that answers every post with 200.
pub async fn webhook() -> Fallible<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/services/T0/B0/X0", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break;
                    }
                }
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = socket.write_all(reply).await;
            });
        }
    });
    Ok(url)
}

/// One order of the mix `tests/flow.rs` uses: accepted, partially accepted, rejected.
pub fn order(i: usize, day: jiff::civil::Date, mtus: &[Timestamp]) -> Value {
    let (zone, side, steps) = match i % 3 {
        0 => (
            "DE-LU",
            "BUY",
            json!([{"price": "3000.00", "quantity": "10.0"}]),
        ),
        1 => (
            "NL",
            "BUY",
            json!([{"price": "500.00", "quantity": "5.0"}, {"price": "1.00", "quantity": "2.5"}]),
        ),
        _ => (
            "BE",
            "SELL",
            json!([{"price": "3500.00", "quantity": "20.0"}]),
        ),
    };
    let periods: Vec<Value> = mtus
        .iter()
        .map(|m| json!({"mtu_start": m.to_string(), "steps": steps}))
        .collect();
    json!({
        "record_id": format!("cost-{i:06}"), "market": "SDAC", "delivery_date": day.to_string(),
        "zone": zone, "portfolio": "DESK", "side": side, "periods": periods
    })
}

/// A one-time schedule as moto stores it.
pub struct Pending {
    at: Timestamp,
    input: String,
    detail_type: String,
    source: String,
}

/// Fires the schedules due at `now` as EventBridge Scheduler would (its PutEvents of the
/// target's input goes through `fire`, metered as the scheduler's), then deletes them (the
/// schedules' `ActionAfterCompletion: DELETE`, not billed). Answers how many fired and the
/// earliest one left.
pub async fn fire_schedules(
    sdk: &SdkConfig,
    fire: &aws_sdk_eventbridge::Client,
    known: &mut HashMap<String, Pending>,
    now: Timestamp,
) -> Fallible<(usize, Option<Timestamp>)> {
    let scheduler = aws_sdk_scheduler::Client::new(sdk);
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = scheduler
            .list_schedules()
            .group_name(GROUP)
            .set_next_token(token)
            .send()
            .await?;
        names.extend(
            page.schedules()
                .iter()
                .filter_map(|s| s.name())
                .map(String::from),
        );
        token = page.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    for name in &names {
        if known.contains_key(name) {
            continue;
        }
        let s = scheduler
            .get_schedule()
            .name(name)
            .group_name(GROUP)
            .send()
            .await?;
        let expr = s.schedule_expression().unwrap_or_default();
        let inner = expr.strip_prefix("at(").and_then(|e| e.strip_suffix(')'));
        let at: Timestamp = format!("{}Z", inner.ok_or("not an at() schedule")?).parse()?;
        let target = s.target().ok_or("a schedule without a target")?;
        let params = target
            .event_bridge_parameters()
            .ok_or("a schedule without EventBridge parameters")?;
        known.insert(
            name.clone(),
            Pending {
                at,
                input: target.input().unwrap_or("{}").to_string(),
                detail_type: params.detail_type().to_string(),
                source: params.source().to_string(),
            },
        );
    }
    let due: Vec<String> = known
        .iter()
        .filter(|(_, p)| p.at <= now)
        .map(|(n, _)| n.clone())
        .collect();
    for name in &due {
        let Some(p) = known.remove(name) else {
            continue;
        };
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(BUS)
            .source(p.source)
            .detail_type(p.detail_type)
            .detail(p.input)
            .build();
        fire.put_events().entries(entry).send().await?;
        scheduler
            .delete_schedule()
            .name(name)
            .group_name(GROUP)
            .send()
            .await?;
    }
    Ok((due.len(), known.values().map(|p| p.at).min()))
}
