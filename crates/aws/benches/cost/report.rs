//! Prices the run's usage and the seed's and prints the tables: the functions, the calls on the
//! wire, and per service the units and dollars per million orders of both designs.

use std::collections::BTreeMap;

use crate::harness::Function;
use crate::meter::{Calls, Units};
use crate::notes;
use crate::prices::{Deployment, Fallible, Prices};
use crate::seed::{self, SeedAssumptions, SeedUsage};
use crate::{FUNCTIONS, Run, SWEEP};

pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// CloudWatch Logs counts 26 bytes of metadata with every log event.
pub const LOG_EVENT_OVERHEAD: u64 = 26;
/// An AWS call's latency in the region, for the duration's sensitivity line.
const AWS_CALL_MS: f64 = 25.0;
pub const SECONDS_A_MONTH: f64 = 30.0 * 24.0 * 3600.0;

/// What Lambda itself writes per invocation with `LogFormat: JSON` and active tracing, as
/// sample records of typical length (estimated, not measured).
pub const PLATFORM_START: &str = r#"{"time":"2026-11-28T11:45:26.123Z","type":"platform.start","record":{"requestId":"8f5c2f4e-2b1a-4c3d-9e8f-0a1b2c3d4e5f","version":"$LATEST","tracing":{"spanId":"3c2b1a0f9e8d7c6b","type":"X-Amzn-Trace-Id","value":"Root=1-674852a6-0123456789abcdef01234567;Parent=3c2b1a0f9e8d7c6b;Sampled=0;Lineage=1:8f5c2f4e:0"}}}"#;
pub const PLATFORM_REPORT: &str = r#"{"time":"2026-11-28T11:45:26.160Z","type":"platform.report","record":{"requestId":"8f5c2f4e-2b1a-4c3d-9e8f-0a1b2c3d4e5f","metrics":{"durationMs":36.712,"billedDurationMs":37,"memorySizeMB":256,"maxMemoryUsedMB":14},"tracing":{"spanId":"3c2b1a0f9e8d7c6b","type":"X-Amzn-Trace-Id","value":"Root=1-674852a6-0123456789abcdef01234567;Parent=3c2b1a0f9e8d7c6b;Sampled=0;Lineage=1:8f5c2f4e:0"},"status":"success"}}"#;
/// And once per cold start.
pub const PLATFORM_INIT: &str = r#"{"time":"2026-11-28T11:45:26.100Z","type":"platform.initStart","record":{"initializationType":"on-demand","phase":"init","runtimeVersion":"provided:al2023.v94","runtimeVersionArn":"arn:aws:lambda:eu-west-1::runtime:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","functionName":"energy-prod-evaluate-order","functionVersion":"$LATEST"}}"#;

/// Lambda's own log bytes for `invocations` with `cold_starts`, under the template's system
/// log level: none of these records at WARN (they are INFO records).
pub fn platform_bytes(deploy: &Deployment, invocations: u64, cold_starts: u64) -> u64 {
    if !matches!(deploy.system_log_level.as_str(), "INFO" | "DEBUG") {
        return 0;
    }
    let per = (PLATFORM_START.len() + PLATFORM_REPORT.len()) as u64 + 2 * LOG_EVENT_OVERHEAD;
    invocations * per + cold_starts * (PLATFORM_INIT.len() as u64 + LOG_EVENT_OVERHEAD)
}

/// One billing dimension: usage per order of each design and its price.
struct Line {
    service: &'static str,
    unit: &'static str,
    price: &'static str,
    energy: f64,
    seed: f64,
}

fn calls_of(
    calls: &BTreeMap<(&'static str, String, String), Calls>,
    op: &str,
    exclude: &str,
) -> u64 {
    calls
        .iter()
        .filter(|((who, _, o), _)| o == op && *who != exclude)
        .map(|(_, c)| c.count)
        .sum()
}

fn gb_seconds(f: &Function, init_ms: u64) -> f64 {
    (f.billed_ms + f.cold_starts * init_ms) as f64 / 1000.0 * f64::from(f.memory_mb) / 1024.0
}

fn log_bytes(f: &Function, deploy: &Deployment) -> u64 {
    f.log_bytes
        + LOG_EVENT_OVERHEAD * f.log_lines
        + platform_bytes(deploy, f.invocations, f.cold_starts)
}

/// `1234567.0` → `1.23 M`.
fn si(x: f64) -> String {
    let (v, s) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, " G"),
        a if a >= 1e6 => (x / 1e6, " M"),
        a if a >= 1e3 => (x / 1e3, " k"),
        _ => (x, ""),
    };
    if x == 0.0 {
        "-".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}{s}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}{s}")
    } else {
        format!("{v:.2}{s}")
    }
}

fn dollars(x: f64) -> String {
    if x == 0.0 {
        "-".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// Events that pace the checks rather than tell of a step of an order's life: a round of checks,
/// the sweeper's nudge.
const PACING_EVENTS: &[&str] = &["OrderChecksDue", "OrderEvaluationDue"];

pub fn print(run: &Run, deploy: &Deployment, prices: &Prices) -> Fallible<()> {
    let s = &run.settings;
    let n = s.orders as f64;
    let calls = run.meter.calls();
    let units = run.meter.units();
    let flow: Vec<&Function> = FUNCTIONS
        .iter()
        .filter_map(|f| run.functions.get(f))
        .collect();
    let mut flow_units = Units::default();
    for (who, u) in &units {
        if *who != SWEEP {
            flow_units.add(u);
        }
    }
    let invocations: u64 = flow.iter().map(|f| f.invocations).sum();
    let gbs: f64 = flow.iter().map(|f| gb_seconds(f, s.init_ms)).sum();
    let access_log = deploy.sample_access_log().len() as u64 + 1 + LOG_EVENT_OVERHEAD;
    let logs = flow.iter().map(|f| log_bytes(f, deploy)).sum::<u64>() + run.posts * access_log;
    let notified = run.states.get("NOTIFIED").copied().unwrap_or(0) as f64;
    let measured = seed::Measured {
        posts: run.posts as f64 / n,
        item_bytes: run.meter.mean_inserted_item() as f64,
        s3_puts: calls_of(&calls, "PutObject", SWEEP) as f64 / n,
        secret_reads: calls_of(&calls, "GetSecretValue", SWEEP) as f64 / n,
        failed_share: notified / n,
        invocations_per_container: s.per_container as f64,
    };
    let assumptions = SeedAssumptions::default();
    let sd: SeedUsage = seed::usage(&assumptions, measured);
    let arm = deploy.architecture == "arm64";
    let lines = [
        Line {
            service: "API Gateway HTTP API",
            unit: "requests",
            price: "apigw_http_request",
            energy: run.posts as f64 / n,
            seed: sd.api_requests,
        },
        Line {
            service: "Lambda requests",
            unit: "requests",
            price: "lambda_request",
            energy: invocations as f64 / n,
            seed: sd.lambda_requests,
        },
        Line {
            service: "Lambda duration arm64",
            unit: "GB-s",
            price: "lambda_gb_second_arm64",
            energy: if arm { gbs / n } else { 0.0 },
            seed: 0.0,
        },
        Line {
            service: "Lambda duration x86_64",
            unit: "GB-s",
            price: "lambda_gb_second_x86_64",
            energy: if arm { 0.0 } else { gbs / n },
            seed: sd.lambda_gb_seconds_x86,
        },
        Line {
            service: "EventBridge PutEvents",
            unit: "64 KB events",
            price: "eventbridge_custom_event",
            energy: flow_units.event_chunks as f64 / n,
            seed: 0.0,
        },
        Line {
            service: "EventBridge archive",
            unit: "GB",
            price: "eventbridge_archive_gb",
            energy: run.archived_bytes as f64 / GIB / n,
            seed: 0.0,
        },
        Line {
            service: "EventBridge Scheduler",
            unit: "invocations",
            price: "scheduler_invocation",
            energy: run.fired as f64 / n,
            seed: 0.0,
        },
        Line {
            service: "Step Functions standard",
            unit: "transitions",
            price: "stepfunctions_standard_transition",
            energy: 0.0,
            seed: sd.transitions,
        },
        Line {
            service: "DynamoDB writes",
            unit: "WRU",
            price: "dynamodb_wru",
            energy: (flow_units.wru + flow_units.index_wru) as f64 / n,
            seed: sd.wru,
        },
        Line {
            service: "DynamoDB reads",
            unit: "RRU",
            price: "dynamodb_rru",
            energy: flow_units.rru_halves as f64 / 2.0 / n,
            seed: sd.rru,
        },
        Line {
            service: "S3 PUT",
            unit: "requests",
            price: "s3_put",
            energy: measured.s3_puts,
            seed: sd.s3_puts,
        },
        Line {
            service: "S3 GET",
            unit: "requests",
            price: "s3_get",
            energy: calls_of(&calls, "GetObject", SWEEP) as f64 / n,
            seed: 0.0,
        },
        Line {
            service: "Secrets Manager",
            unit: "API calls",
            price: "secretsmanager_api_call",
            energy: measured.secret_reads,
            seed: sd.secret_reads,
        },
        Line {
            service: "CloudWatch Logs ingestion",
            unit: "GB",
            price: "cloudwatch_logs_ingestion_gb",
            energy: logs as f64 / GIB / n,
            seed: sd.log_bytes / GIB,
        },
        Line {
            service: "X-Ray traces recorded",
            unit: "traces",
            price: "xray_trace_recorded",
            energy: (run.posts + run.fired) as f64 * s.xray_sampling / n,
            seed: 0.0,
        },
    ];

    println!();
    println!(
        "Cost per million orders on AWS, {} list prices read {} ({})",
        prices.region,
        prices.read_on,
        s.prices.display()
    );
    println!(
        "Run: {} orders ({} per POST, {} MTUs each, posted 6 h before the SDAC gate) through the flow on moto in {:.1} s",
        s.orders,
        s.batch,
        s.periods,
        run.elapsed.as_secs_f64()
    );
    let join = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("Final states: {}", join(&run.states));
    println!(
        "Events delivered: {}; schedules fired: {}",
        join(&run.delivered),
        run.fired
    );

    println!();
    println!(
        "Lambda functions ({}, memory from template.yaml), timed against moto on loopback; sweep-pending: one idle tick",
        deploy.architecture
    );
    println!(
        "{:<16} {:>6} {:>12} {:>11} {:>11} {:>12} {:>11}",
        "function", "MB", "invoc/order", "billed ms", "cold starts", "log B/invoc", "calls/invoc"
    );
    for (name, f) in &run.functions {
        let aws_calls: u64 = calls
            .iter()
            .filter(|((w, _, _), _)| w == name)
            .map(|(_, c)| c.count)
            .sum();
        let per = if *name == SWEEP { 1.0 } else { n };
        println!(
            "{:<16} {:>6} {:>12.2} {:>11.1} {:>11} {:>12} {:>11.1}",
            name,
            f.memory_mb,
            f.invocations as f64 / per,
            f.billed_ms as f64 / f.invocations.max(1) as f64,
            f.cold_starts,
            f.log_bytes / f.invocations.max(1),
            aws_calls as f64 / f.invocations.max(1) as f64
        );
    }

    println!();
    println!("AWS calls on the wire, per order (the sweeper: per tick)");
    println!(
        "{:<16} {:<16} {:<20} {:>9} {:>7} {:>10} {:>10}",
        "caller", "service", "operation", "calls", "failed", "req B", "resp B"
    );
    for ((who, service, op), c) in &calls {
        let per = if *who == SWEEP { 1.0 } else { n };
        println!(
            "{:<16} {:<16} {:<20} {:>9.2} {:>7} {:>10} {:>10}",
            who,
            service,
            op,
            c.count as f64 / per,
            c.failed,
            c.request_bytes / c.count.max(1),
            c.response_bytes / c.count.max(1)
        );
    }
    for (who, u) in &units {
        println!(
            "  {who}: DynamoDB {:.2} RRU, {} WRU on the table and {} on the due index; PutEvents {} entries, {} chunks, {} B",
            u.rru_halves as f64 / 2.0,
            u.wru,
            u.index_wru,
            u.event_entries,
            u.event_chunks,
            u.event_bytes
        );
    }

    println!();
    println!(
        "{:<26} {:<12} | {:>14} {:>10} | {:>14} {:>10}",
        "service", "unit", "Energy units/M", "$/M", "seed units/M", "$/M"
    );
    println!("{}", "-".repeat(96));
    let (mut energy_total, mut seed_total) = (0.0, 0.0);
    for l in &lines {
        let p = prices.get(l.price)?.each();
        let (e, sd) = (l.energy * 1e6, l.seed * 1e6);
        energy_total += e * p;
        seed_total += sd * p;
        println!(
            "{:<26} {:<12} | {:>14} {:>10} | {:>14} {:>10}",
            l.service,
            l.unit,
            si(e),
            dollars(e * p),
            si(sd),
            dollars(sd * p)
        );
    }
    println!("{}", "-".repeat(96));
    println!(
        "{:<39} | {:>25} | {:>25}",
        "total, $ per million orders",
        format!("{energy_total:.2}"),
        format!("{seed_total:.0}")
    );
    println!(
        "seed / Energy: {:.0}x; goal <= $10 per million orders: {}",
        seed_total / energy_total,
        if energy_total <= 10.0 {
            "met"
        } else {
            "NOT met"
        }
    );

    // What the published flow costs before any state or compute: a request per POST, an event
    // for each step of an order's life (`OrderSubmitted`, `OrderReady`, ...: each both a hand-over
    // between handlers and an event a desk may subscribe to; not the rounds' `OrderChecksDue` nor
    // the sweeper's `OrderEvaluationDue`, which pace the checks), a result object per stored
    // order. Counted from the events delivered in the run (no duplicates occur in it).
    let step_events = run
        .delivered
        .iter()
        .filter(|(t, _)| !PACING_EVENTS.contains(&t.as_str()))
        .map(|(_, c)| *c)
        .sum::<u64>() as f64
        / n;
    let flow = 1e6
        * (run.posts as f64 / n * prices.get("apigw_http_request")?.each()
            + step_events * prices.get("eventbridge_custom_event")?.each()
            + measured.s3_puts * prices.get("s3_put")?.each());
    println!(
        "of which the published flow: {} (an API request per POST of {} order(s), {:.2} events of an order's life and {:.2} result objects an order); the rest (state, compute, logs, tracing, rounds): {}",
        dollars(flow),
        s.batch,
        step_events,
        measured.s3_puts,
        dollars(energy_total - flow)
    );
    println!(
        "  with this flow the goal leaves {} per million orders for the rest",
        dollars(10.0 - flow)
    );

    // The Lambda duration had every AWS call taken AWS_CALL_MS instead of moto's time.
    let flow_calls: u64 = calls
        .iter()
        .filter(|((w, _, _), _)| FUNCTIONS.contains(w))
        .map(|(_, c)| c.count)
        .sum();
    let slow_gbs: f64 = FUNCTIONS
        .iter()
        .filter_map(|name| run.functions.get(name).map(|f| (name, f)))
        .map(|(name, f)| {
            let own: u64 = calls
                .iter()
                .filter(|((w, _, _), _)| w == name)
                .map(|(_, c)| c.count)
                .sum();
            let ms = (own as f64 * AWS_CALL_MS).max(f.billed_ms as f64);
            ms / 1000.0 * f64::from(f.memory_mb) / 1024.0
        })
        .sum();
    let duration_price = prices
        .get(if arm {
            "lambda_gb_second_arm64"
        } else {
            "lambda_gb_second_x86_64"
        })?
        .each();
    println!(
        "Sensitivity: at {AWS_CALL_MS} ms per AWS call ({:.1} calls per order) Lambda duration would be ${:.2} per million orders instead of ${:.2}.",
        flow_calls as f64 / n,
        slow_gbs / n * 1e6 * duration_price,
        gbs / n * 1e6 * duration_price
    );

    notes::fixed(run, deploy, prices, energy_total)?;
    notes::assumptions_text(run, deploy, prices, &assumptions, measured);
    Ok(())
}
