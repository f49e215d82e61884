//! Cost per million orders on AWS, from counted calls.
//!
//! Runs N orders through the whole flow on the AWS adapters against moto, as
//! `tests/flow.rs` does: submit-order → evaluate-order (hand-over, then each round of checks
//! when its one-time schedule fires; the firing is simulated as Scheduler would do it, a
//! PutEvents of the schedule's input) → store-result or notify-slack. Every SDK client a handler is wired with
//! carries an interceptor ([`meter::Tap`]) that counts calls and reads the bodies for billable
//! units; each invocation is timed and its log output measured. Then it prices the usage from
//! `bench/prices-eu-west-1.json`, per service and per million orders, beside the seed's design
//! (a Step Functions standard workflow per order polling every two minutes) priced from the
//! same table.
//!
//! ```sh
//! cargo bench -p energy-aws --bench cost                     # 200 orders, one per POST
//! cargo bench -p energy-aws --bench cost -- --orders 500 --batch 10 --periods 24
//! ```
//!
//! The pieces: `cost/harness.rs` (metered clients, Lambda's billing of an invocation, the Slack
//! webhook, Scheduler's firing, the order mix), `cost/meter.rs` (the interceptor and the log
//! counter), `cost/sizes.rs` (DynamoDB's size rules), `cost/prices.rs` (the price table and
//! template.yaml's facts), `cost/seed.rs` (the seed's usage model), `cost/report.rs` and
//! `cost/notes.rs` (the printout).
//!
//! Options: `--orders N` (200), `--batch N` orders per POST (1), `--periods N` MTUs per order (2,
//! at most 92), `--per-container N` invocations a Lambda container serves between cold starts
//! (50), `--init-ms N` billed INIT of a cold start (10), `--xray-sampling F` (0.05),
//! `--prices PATH`. It needs moto_server (`ENERGY_MOTO_SERVER` or the project's `.venv`).
//! Dollars here are list-price estimates in `f64`, not order money.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "cost/harness.rs"]
mod harness;
#[path = "cost/meter.rs"]
mod meter;
#[path = "cost/notes.rs"]
mod notes;
#[path = "cost/prices.rs"]
mod prices;
#[path = "cost/report.rs"]
mod report;
#[path = "cost/seed.rs"]
mod seed;
#[path = "cost/sizes.rs"]
mod sizes;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use energy_auction::sim::{SimConfig, SimPlatform};
use energy_aws::dynamodb::DynamoOrderStore;
use energy_aws::s3::S3Results;
use energy_aws::scheduler::{EventBridgeScheduler, SchedulerTarget};
use energy_aws::slack::{CachedSecret, SlackWebhook};
use energy_core::calendar::{AuctionId, MarketRules};
use energy_core::handler::Event;
use energy_core::market::Market;
use energy_core::memory::ManualClock;
use energy_core::ports::{Clock, Notifier, OrderStore};
use energy_core::retry::RetryPolicy;
use evaluate_order::EvaluateOrder;
use jiff::{SignedDuration, Timestamp};
use notify_slack::NotifySlack;
use serde_json::{Value, json};
use store_result::StoreResult;
use submit_order::SubmitOrder;
use sweep_pending::SweepPending;
use tracing::Instrument;

use harness::{Function, Lambdas, clients, fire_schedules, order, request_id, run_event, webhook};
use meter::{LogMeter, Meter};
use prices::{Deployment, Fallible, Prices};
use support::{BUCKET, GROUP, ROLE_ARN, TABLE};

/// The flow's functions, and who else calls AWS in it.
pub const FUNCTIONS: [&str; 4] = [
    "submit-order",
    "evaluate-order",
    "store-result",
    "notify-slack",
];
pub const SCHEDULER: &str = "scheduler";
pub const SWEEP: &str = "sweep-pending";

/// Command-line settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub orders: usize,
    pub batch: usize,
    pub periods: usize,
    pub per_container: u64,
    pub init_ms: u64,
    pub xray_sampling: f64,
    pub prices: PathBuf,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn settings() -> Fallible<Settings> {
    let mut s = Settings {
        orders: 200,
        batch: 1,
        periods: 2,
        per_container: 50,
        init_ms: 10,
        xray_sampling: 0.05,
        prices: root().join("bench/prices-eu-west-1.json"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            // cargo bench passes it to every harness-less bench.
            "--bench" => {}
            "--orders" => s.orders = value(&arg)?.parse()?,
            "--batch" => s.batch = value(&arg)?.parse()?,
            "--periods" => s.periods = value(&arg)?.parse()?,
            "--per-container" => s.per_container = value(&arg)?.parse()?,
            "--init-ms" => s.init_ms = value(&arg)?.parse()?,
            "--xray-sampling" => s.xray_sampling = value(&arg)?.parse()?,
            "--prices" => s.prices = PathBuf::from(value(&arg)?),
            other => return Err(format!("unknown option {other:?}").into()),
        }
    }
    if s.orders == 0 || s.batch == 0 || s.per_container == 0 || !(1..=92).contains(&s.periods) {
        return Err(
            "--orders, --batch and --per-container must be at least 1, --periods 1 to 92".into(),
        );
    }
    Ok(s)
}

/// What the run measured, for the report.
pub struct Run {
    pub settings: Settings,
    pub posts: u64,
    pub post_bytes: u64,
    pub fired: u64,
    pub archived_bytes: u64,
    pub delivered: BTreeMap<String, u64>,
    pub states: BTreeMap<String, u64>,
    pub functions: BTreeMap<&'static str, Function>,
    pub meter: Meter,
    pub elapsed: Duration,
}

async fn run(settings: Settings, deploy: &Deployment, logs: LogMeter) -> Fallible<Run> {
    let started = Instant::now();
    let moto = support::Moto::start();
    let sdk = moto.sdk().await;
    support::create_table(&sdk).await;
    let bus_arn = support::create_bus(&sdk).await;
    support::create_group(&sdk).await;
    support::create_bucket(&sdk).await;
    let queue = support::subscribe_queue(&sdk, "energy.orders").await;
    let secret = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("energy-slack-webhook")
        .secret_string(webhook().await?)
        .send()
        .await?;
    let secret_arn = secret.arn().ok_or("no secret ARN")?.to_string();

    let rules = MarketRules::default();
    let day: jiff::civil::Date = "2026-01-15".parse()?;
    let auction = AuctionId {
        market: Market::Sdac,
        delivery_date: day,
    };
    // Posted six hours before the gate, as the seed's polling is priced.
    let posted = rules.gate_closure(auction)? - SignedDuration::from_hours(6);
    let mtus: Vec<Timestamp> = rules
        .mtus(auction)?
        .into_iter()
        .take(settings.periods)
        .collect();
    let clock = Arc::new(ManualClock::new(posted));
    let retry = RetryPolicy::default();
    let meter = Meter::default();

    let c = clients(&sdk, &meter, "submit-order");
    let submit = SubmitOrder {
        clock: clock.clone(),
        orders: c.orders(),
        bus: c.bus(),
        config: submit_order::Config::default(),
    };
    let c = clients(&sdk, &meter, "evaluate-order");
    let evaluate = EvaluateOrder {
        clock: clock.clone(),
        orders: c.orders(),
        due: c.orders(),
        bus: c.bus(),
        scheduler: Arc::new(EventBridgeScheduler::new(
            c.scheduler.clone(),
            SchedulerTarget {
                group: GROUP.into(),
                bus_arn,
                role_arn: ROLE_ARN.into(),
                dead_letter_arn: Some(support::DLQ_ARN.into()),
            },
        )),
        platform: Arc::new(SimPlatform::new(SimConfig::default(), clock.clone())),
        config: evaluate_order::Config {
            retry,
            rules: MarketRules::default(),
            ..Default::default()
        },
    };
    let c = clients(&sdk, &meter, "store-result");
    let store = StoreResult {
        clock: clock.clone(),
        orders: c.orders(),
        bus: c.bus(),
        results: Arc::new(S3Results::new(c.s3.clone(), BUCKET)),
        config: store_result::Config { retry },
    };
    let notify_clients = clients(&sdk, &meter, "notify-slack");
    // A new container reads the webhook's secret again: the notifier is rebuilt at each cold start.
    let slack = |secrets: &aws_sdk_secretsmanager::Client| -> Fallible<Arc<dyn Notifier>> {
        let url = CachedSecret::new(secrets.clone(), secret_arn.clone());
        Ok(Arc::new(SlackWebhook::new(url, Duration::from_secs(5))?))
    };
    let mut notify = NotifySlack {
        clock: clock.clone(),
        orders: notify_clients.orders(),
        notifier: slack(&notify_clients.secrets)?,
        config: notify_slack::Config { retry },
    };
    let fire = clients(&sdk, &meter, SCHEDULER).events;

    let mut lambdas = Lambdas {
        per_container: settings.per_container,
        logs,
        functions: BTreeMap::new(),
    };
    let memory = |name: &str| deploy.memory(name);

    let (mut posts, mut post_bytes) = (0u64, 0u64);
    let orders: Vec<Value> = (0..settings.orders).map(|i| order(i, day, &mtus)).collect();
    for batch in orders.chunks(settings.batch) {
        let request = support::post(&json!(batch));
        post_bytes += request.body.as_ref().map_or(0, |b| b.len() as u64);
        let span = tracing::info_span!(
            "request",
            method = "POST",
            path = "/orders",
            request_id = %request_id(),
        );
        let response = lambdas
            .invoke(
                "submit-order",
                memory("submit-order")?,
                submit.handle(request).instrument(span),
            )
            .await;
        if response.status_code != 202 {
            return Err(format!(
                "POST /orders answered {}: {:?}",
                response.status_code, response.body
            )
            .into());
        }
        posts += 1;
    }

    let mut known = HashMap::new();
    let (mut fired, mut archived_bytes) = (0u64, 0u64);
    let mut delivered: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0.. {
        if round > 100_000 {
            return Err("the flow did not settle".into());
        }
        let mut events = support::drain(&sdk, &queue).await;
        if events.is_empty() {
            match fire_schedules(&sdk, &fire, &mut known, clock.now()).await? {
                (0, Some(next)) => clock.set(next),
                (0, None) => break,
                (n, _) => fired += n as u64,
            }
            continue;
        }
        for event in &mut events {
            // moto leaves `account` out of the events it delivers (EventBridge always sets it).
            if event.get("account").is_none() {
                event["account"] = json!("123456789012");
            }
            archived_bytes += event.to_string().len() as u64;
            let detail_type = event["detail-type"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            *delivered.entry(detail_type.clone()).or_default() += 1;
            let e: Event = serde_json::from_value(event.clone())?;
            match detail_type.as_str() {
                "OrderSubmitted" | "OrderEvaluationDue" | "OrderAmended" | "OrderChecksDue" => {
                    let mem = memory("evaluate-order")?;
                    lambdas
                        .invoke("evaluate-order", mem, run_event(&evaluate, e))
                        .await?;
                }
                "OrderReady" => {
                    let mem = memory("store-result")?;
                    lambdas
                        .invoke("store-result", mem, run_event(&store, e))
                        .await?;
                }
                "OrderFailed" | "OrderChangeRefused" => {
                    if lambdas.next_is_cold("notify-slack") {
                        notify.notifier = slack(&notify_clients.secrets)?;
                    }
                    let mem = memory("notify-slack")?;
                    lambdas
                        .invoke("notify-slack", mem, run_event(&notify, e))
                        .await?;
                }
                _ => {}
            }
        }
    }

    // One tick of the sweeper with nothing overdue: its cost is per tick, not per order.
    let c = clients(&sdk, &meter, SWEEP);
    let sweep = SweepPending {
        clock: clock.clone(),
        due: c.orders(),
        bus: c.bus(),
        config: sweep_pending::Config::default(),
    };
    let tick: Event = serde_json::from_value(support::eventbridge(
        "Scheduled Event",
        "aws.events",
        json!({}),
    ))?;
    lambdas
        .invoke(SWEEP, memory(SWEEP)?, run_event(&sweep, tick))
        .await?;

    let reader = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    for o in &orders {
        let id = energy_core::order::RecordId::parse(o["record_id"].as_str().unwrap_or_default())?;
        let state = reader
            .get(&id)
            .await?
            .map_or("MISSING".to_string(), |r| r.state.to_string());
        *states.entry(state).or_default() += 1;
    }
    drop(moto);
    Ok(Run {
        settings,
        posts,
        post_bytes,
        fired,
        archived_bytes,
        delivered,
        states,
        functions: lambdas.functions,
        meter,
        elapsed: started.elapsed(),
    })
}

fn main() -> Fallible<()> {
    let settings = settings()?;
    // The handlers log as deployed: JSON at INFO (template.yaml's LoggingConfig), through the
    // subscriber the binaries install, into a counter instead of stdout.
    // SAFETY: nothing else runs yet; no other thread reads the environment.
    unsafe {
        std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
        std::env::set_var("AWS_LAMBDA_LOG_LEVEL", "INFO");
    }
    let logs = LogMeter::default();
    lambda_runtime::tracing::init_default_subscriber_with_writer(logs.clone());
    let deploy = Deployment::read(&root().join("template.yaml"))?;
    let prices = Prices::read(&settings.prices)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let run = runtime.block_on(run(settings, &deploy, logs))?;
    report::print(&run, &deploy, &prices)
}
