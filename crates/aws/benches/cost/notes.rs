//! What the report says beside the per-order table: Energy's costs by the month, the prices
//! used, and what is counted, measured or assumed.

use crate::Run;
use crate::SWEEP;
use crate::prices::{Deployment, Fallible, Prices};
use crate::report::{
    GIB, LOG_EVENT_OVERHEAD, PLATFORM_INIT, PLATFORM_REPORT, PLATFORM_START, SECONDS_A_MONTH,
    platform_bytes,
};
use crate::seed::{self, SeedAssumptions};

/// Costs by the month whatever the number of orders.
pub fn fixed(run: &Run, deploy: &Deployment, prices: &Prices, per_million: f64) -> Fallible<()> {
    let ticks = SECONDS_A_MONTH / 60.0 / f64::from(deploy.sweep_every_minutes);
    let p = |k: &str| prices.get(k).map(|p| p.each());
    let mut rows: Vec<(String, f64)> = Vec::new();
    if let Some(f) = run.functions.get(SWEEP) {
        let u = run.meter.units().get(SWEEP).cloned().unwrap_or_default();
        let per_tick = p("lambda_request")?
            + f.billed_ms as f64 / 1000.0 * f64::from(f.memory_mb) / 1024.0
                * p("lambda_gb_second_arm64")?
            + u.rru_halves as f64 / 2.0 * p("dynamodb_rru")?
            + (f.log_bytes + LOG_EVENT_OVERHEAD * f.log_lines + platform_bytes(deploy, 1, 0))
                as f64
                / GIB
                * p("cloudwatch_logs_ingestion_gb")?;
        rows.push((
            format!(
                "sweep-pending, {ticks:.0} idle ticks (every {} min, measured tick)",
                deploy.sweep_every_minutes
            ),
            ticks * per_tick,
        ));
    }
    rows.push((
        "X-Ray reservoir, at most 1 trace/s (upper bound)".into(),
        SECONDS_A_MONTH * p("xray_trace_recorded")?,
    ));
    rows.push((
        format!("Secrets Manager, {} secret(s)", deploy.secrets),
        deploy.secrets as f64 * p("secretsmanager_secret_month")?,
    ));
    rows.push((
        format!("KMS, {} customer key(s)", deploy.kms_keys),
        deploy.kms_keys as f64 * p("kms_key_month")?,
    ));
    rows.push((
        format!("CloudWatch, {} alarm(s)", deploy.alarms),
        deploy.alarms as f64 * p("cloudwatch_alarm_month")?,
    ));
    println!();
    println!("Energy's fixed costs, $ per month whatever the orders");
    let mut total = 0.0;
    for (what, usd) in &rows {
        total += usd;
        println!("  {what:<62} {usd:>8.2}");
    }
    println!("  {:<62} {total:>8.2}", "total");
    println!(
        "  At 1 M orders a month: {:.2} + {total:.2} = ${:.2} a month; without the X-Ray reservoir's bound ${:.2}.",
        per_million,
        per_million + total,
        per_million + total - SECONDS_A_MONTH * p("xray_trace_recorded")?
    );
    Ok(())
}

pub fn assumptions_text(
    run: &Run,
    deploy: &Deployment,
    prices: &Prices,
    a: &SeedAssumptions,
    m: seed::Measured,
) {
    let s = &run.settings;
    println!();
    println!(
        "Prices ({}, read {}; unconfirmed ones name where the figure came from in the file):",
        prices.region, prices.read_on
    );
    for (key, p) in &prices.by_key {
        println!(
            "  {key:<34} ${} per {} {} [{}]",
            p.usd, p.per, p.unit, p.status
        );
    }
    println!();
    println!(
        "Counted on the wire (SDK interceptor on every handler's clients): API calls per service and operation;"
    );
    println!(
        "  DynamoDB RRU/WRU from the item sizes in the bodies (4 KB reads, half when eventually consistent; 1 KB writes,"
    );
    println!(
        "  the larger of old and new item, twice in a transaction; writes to the due index); PutEvents entries and 64 KB"
    );
    println!(
        "  chunks (the scheduler's firing included); S3 PUTs; Secrets Manager reads. Counted by the harness: API requests,"
    );
    println!(
        "  Lambda invocations, schedules fired, bytes of every delivered event (archive), bytes the handlers log."
    );
    println!(
        "Measured, not AWS's: billed duration = handler time against moto on this machine, rounded up to 1 ms."
    );
    println!("Estimated, not counted:");
    println!(
        "  - a cold start every {} invocations of a function, {} ms INIT billed (TOOLCHAIN.md: ~9 ms measured);",
        s.per_container, s.init_ms
    );
    println!(
        "    the Slack webhook's secret is read at each cold start (counted on the wire) and again every five minutes in a warm container (not counted: at most 12 reads an hour per container);"
    );
    println!(
        "  - Lambda's own log records (JSON format, active tracing; system log level {}: {}): {} B per invocation, {} B more per cold start, and 26 B",
        deploy.system_log_level,
        if platform_bytes(deploy, 1, 0) == 0 {
            "not written"
        } else {
            "written"
        },
        PLATFORM_START.len() + PLATFORM_REPORT.len(),
        PLATFORM_INIT.len()
    );
    println!(
        "    per log event; API access log line {} B (template's format, typical values);",
        deploy.sample_access_log().len()
    );
    println!(
        "  - X-Ray: a trace starts at each API request and each schedule firing, sampled at {} (default rule beyond",
        s.xray_sampling
    );
    println!(
        "    its 1/s reservoir, which is in the fixed costs); events carry the trace to the next function;"
    );
    println!(
        "  - list prices beyond every free tier (Scheduler's 14 M invocations and Lambda's 1 M requests a month are free);"
    );
    println!(
        "  - not priced: log and archive storage, DynamoDB storage and backups, S3 storage, data transfer, KMS requests."
    );
    println!(
        "Seed's design (usage computed, not run): a Step Functions standard execution per order; lambda_a polls every"
    );
    println!(
        "  {} s from submission ({} min before the gate) until results ({} min after it): {:.0} polls, {:.0} transitions",
        a.poll_seconds,
        a.lead_minutes,
        a.results_after_gate_minutes,
        a.polls(),
        a.transitions(m.failed_share)
    );
    println!(
        "  (Task, Choice, Wait per poll; InvokeB; end state; a notify state for the {:.0} % failed orders);",
        m.failed_share * 100.0
    );
    println!(
        "  Python on x86_64 at {} MB: post {} ms, poll {} ms, lambda_b {} ms, {} ms INIT per cold start, a cold start every",
        a.memory_mb, a.post_ms, a.poll_ms, a.finish_ms, a.init_ms
    );
    println!(
        "  {} invocations; each poll reads the order (eventually consistent GetItem of the measured {} B item); one",
        s.per_container, m.item_bytes
    );
    println!(
        "  PutItem at submission and one write when done; {} B and {} log events per invocation (text format);",
        a.log_bytes, a.log_events
    );
    println!(
        "  S3 PUTs and Secrets Manager reads per order as Energy measured; no X-Ray, no EventBridge custom events."
    );
}
