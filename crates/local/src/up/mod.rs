//! `energy up`: the deployed system on one machine. The HTTP API on loopback in front of
//! submit-order; a bus routed by `template.yaml` (plus local HTTP consumers); delivery like
//! EventBridge to asynchronous Lambda targets; the scheduler; the sweep rule; the simulated
//! auction platform; all on one embedded database under the data dir and a compressed market
//! clock. See the README's "energy up" section.

pub mod aws_api;
pub mod bus;
pub mod clock;
pub mod console;
pub mod engine;
pub mod events_api;
pub mod notifier;
pub mod platform;
pub mod results;
pub mod scheduler;
pub mod server;
pub mod shared;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use energy_auction::sim::{Publication, SimConfig, SimPlatform};
use energy_core::calendar::{AuctionId, MARKET_TIME_ZONE, MarketRules, market_date};
use energy_core::market::{Market, Zone};
use energy_core::ports::Clock;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::Db;
use crate::handlers::{Adapters, Handlers};
use crate::topology::{Topology, TopologyError};
use bus::LocalBus;
use clock::MarketClock;
use engine::Observer;
use notifier::{LocalNotifier, Sink};
use platform::PersistentPlatform;
use results::FileResults;
use scheduler::LocalScheduler;
use shared::Shared;
use store::LocalStore;

/// The consumers file `energy up` reads when `--consumers` is not given, if it exists.
pub const DEFAULT_CONSUMERS: &str = "energy.consumers.yaml";

/// The sample orders of the README (`events-schema/api/examples/orders.json`), for the delivery
/// day they name.
pub const SAMPLE_ORDERS: &str = include_str!("../../../../events-schema/api/examples/orders.json");
const SAMPLE_DAY: &str = "2026-11-28";

/// The sample orders moved to the first delivery day whose SDAC gate is still open at `now`
/// (with half an hour to spare): what `energy up` writes to `<data-dir>/sample-orders.json`.
pub fn sample_orders(now: Timestamp) -> (jiff::civil::Date, String) {
    let rules = MarketRules::default();
    let spare = now
        .saturating_add(SignedDuration::from_mins(30))
        .unwrap_or(now);
    let mut day = market_date(now).tomorrow().unwrap_or(market_date(now));
    while rules
        .gate_closure(AuctionId {
            market: Market::Sdac,
            delivery_date: day,
        })
        .is_ok_and(|gate| gate <= spare)
    {
        day = day.tomorrow().unwrap_or(day);
    }
    (day, SAMPLE_ORDERS.replace(SAMPLE_DAY, &day.to_string()))
}

/// How long (wall time) the sweeper leaves an order to the queue before it steps in.
pub const REAL_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Deliveries in flight by default. Each waits mostly on the database thread's group commit
/// (its claim, then its effect's write), and the final phase of `--bench up` is bound by how
/// many wait at once, not by the CPU: 8 left a core idle (see the README's performance
/// figures). In AWS an unreserved function runs hundreds of invocations at once.
pub const DELIVERIES_IN_FLIGHT: usize = 32;

/// `energy up`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Port of the HTTP API on 127.0.0.1 (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8080, env = "ENERGY_PORT")]
    pub port: u16,
    /// Where the database, the result objects and the notifications log live.
    #[arg(long, default_value = ".energy", env = "ENERGY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Market seconds per real second. 60: an hour of the market day passes in a minute.
    #[arg(long, default_value_t = 60)]
    pub speed: u32,
    /// Market time when a new data dir starts (RFC 3339); default 09:00 Brussels time today,
    /// three hours before tomorrow's SDAC gate closes. A data dir keeps its clock.
    #[arg(long)]
    pub start: Option<Timestamp>,
    /// A SAM template to route by instead of the template built in.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// Local consumer rules with HTTP targets [default: energy.consumers.yaml if present].
    #[arg(long, value_name = "FILE")]
    pub consumers: Option<PathBuf>,
    /// Results for this zone never come (see the evaluator give up). Repeatable.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    pub never_publish: Vec<Zone>,
    /// This zone is decoupled: its final results, cleared locally, come 100 minutes after the
    /// usual final time in every market, and its preliminary ones (SDAC) are withdrawn at that
    /// time. Repeatable.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    pub decouple: Vec<Zone>,
    /// The simulated platform refuses to withdraw orders in this zone (see a cancel refused).
    /// Repeatable.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    pub refuse_withdrawals: Vec<Zone>,
    /// Results appear this many market minutes after the calendar's publication time.
    #[arg(long, default_value_t = 0)]
    pub publication_delay_minutes: i64,
    /// Deliveries in flight at once, across every target (Lambda runs an asynchronous
    /// invocation of each function in parallel up to its concurrency).
    #[arg(long, default_value_t = DELIVERIES_IN_FLIGHT)]
    pub concurrency: usize,
    /// Print nothing per delivery.
    #[arg(long)]
    pub quiet: bool,
}

impl UpArgs {
    /// The options with their defaults, for a data dir.
    pub fn new(data_dir: PathBuf) -> UpArgs {
        UpArgs {
            port: 0,
            data_dir,
            speed: 60,
            start: None,
            template: None,
            consumers: None,
            never_publish: Vec::new(),
            decouple: Vec::new(),
            refuse_withdrawals: Vec::new(),
            publication_delay_minutes: 0,
            concurrency: DELIVERIES_IN_FLIGHT,
            quiet: true,
        }
    }
}

fn parse_zone(s: &str) -> Result<Zone, String> {
    s.parse::<Zone>().map_err(|_| {
        let all: Vec<String> = Zone::ALL.iter().map(|z| z.to_string()).collect();
        format!("{s:?} is not a bidding zone ({})", all.join(", "))
    })
}

/// The client of HTTP targets and Slack: every call ends within ten seconds.
/// How long the stack's HTTP calls (Slack, HTTP targets) may take.
pub const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")
}

/// A running stack.
pub struct Running {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    pub handlers: Arc<Handlers>,
    /// Every adapter of the stack, for the commands that look inside.
    pub adapters: Adapters,
    pub data_dir: PathBuf,
    pub consumers: Option<PathBuf>,
    pub restored_platform_orders: usize,
    pub notifications_to_slack: bool,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    _lock: std::fs::File,
}

/// 09:00 Brussels time on `date`.
pub fn nine_am(date: jiff::civil::Date) -> Timestamp {
    let tz = TimeZone::get(MARKET_TIME_ZONE).unwrap_or(TimeZone::UTC);
    date.at(9, 0, 0, 0)
        .to_zoned_datetime(tz)
        .map(|z| z.timestamp())
        .unwrap_or_else(|_| Timestamp::now())
}

/// The routing: the template (given or built in) plus the consumers file.
pub fn load_topology(
    template: Option<&Path>,
    consumers: Option<&Path>,
) -> anyhow::Result<(Topology, Option<PathBuf>)> {
    let topology = match template {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Topology::from_template(&text, &path.display().to_string())
        }
        None => Topology::embedded(),
    };
    let mut topology = topology.map_err(startup_error)?;
    let consumers = match consumers {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_CONSUMERS)).filter(|p| p.exists()),
    };
    if let Some(path) = &consumers {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        crate::consumers::add(&mut topology, &text, &path.display().to_string())
            .map_err(startup_error)?;
    }
    Ok((topology, consumers))
}

fn startup_error(e: TopologyError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Starts the stack: opens the data dir, recovers, binds the HTTP API, starts the loops.
pub async fn start(args: &UpArgs, observer: Observer) -> anyhow::Result<Running> {
    energy_core::crash::check_env().map_err(anyhow::Error::msg)?;
    let (topology, consumers) = load_topology(args.template.as_deref(), args.consumers.as_deref())?;
    let fresh = !Db::exists(&args.data_dir);
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create the data dir {}", args.data_dir.display()))?;
    // The lock first: opening upgrades a database made by an earlier version, which an
    // `energy up` of that version still running on it would not expect.
    let lock = lock_data_dir(&args.data_dir)?;
    let db = Arc::new(Db::open(&args.data_dir)?);
    let clock = market_clock(args, &db, fresh)?;
    let rules = MarketRules::default();
    let shared = Arc::new(Shared::new(db.clone(), clock, Arc::new(topology))?);
    let platform = platform(args, &shared, &rules, clock)?;
    let restored_platform_orders = platform.restore()?;
    let sim = platform.sim.clone();
    let slack = slack_url()?;
    let adapters = adapters(args, &shared, clock, platform, slack.as_deref())?;
    let (_, sample) = sample_orders(clock.now());
    std::fs::write(args.data_dir.join("sample-orders.json"), sample).with_context(|| {
        format!(
            "cannot write {}/sample-orders.json",
            args.data_dir.display()
        )
    })?;
    let handlers = Arc::new(handlers(&adapters, rules, &shared, clock));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(server::serve(
            listener,
            server::router(handlers.clone())
                .merge(aws_api::router(Arc::new(aws_api::AwsApi {
                    shared: shared.clone(),
                    started: clock.now(),
                })))
                .merge(console::router(Arc::new(console::Console {
                    shared: shared.clone(),
                    sim,
                })))
                .layer(axum::middleware::from_fn_with_state(
                    shared.db.clone(),
                    server::committed_first,
                ))
                .layer(axum::middleware::from_fn(server::loopback_only)),
            stop_rx.clone(),
        )),
        tokio::spawn(engine::deliveries(
            shared.clone(),
            handlers.clone(),
            observer,
            http_client()?,
            args.concurrency,
            stop_rx.clone(),
        )),
        tokio::spawn(engine::scheduler(shared.clone(), stop_rx.clone())),
        tokio::spawn(engine::sweeper(shared.clone(), stop_rx.clone())),
        tokio::spawn(engine::reaper(shared.clone(), stop_rx)),
    ];
    Ok(Running {
        addr,
        shared,
        handlers,
        adapters,
        data_dir: args.data_dir.clone(),
        consumers,
        restored_platform_orders,
        notifications_to_slack: slack.is_some(),
        stop,
        tasks,
        _lock: lock,
    })
}

/// One `energy up` per data dir; the lock goes with the process, even on kill -9.
fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    let lock = std::fs::File::create(dir.join("up.lock"))
        .with_context(|| format!("cannot create {}/up.lock", dir.display()))?;
    if lock.try_lock().is_err() {
        bail!(
            "another `energy up` is running on {}; stop it or pass another --data-dir",
            dir.display()
        );
    }
    Ok(lock)
}

/// The data dir's market clock, or a new one at `--start` for a new data dir.
fn market_clock(args: &UpArgs, db: &Db, fresh: bool) -> anyhow::Result<MarketClock> {
    let clock = match MarketClock::load(db)? {
        Some(_) if args.start.is_some() && !fresh => bail!(
            "{} already has a market clock; --start applies to a new data dir (use another --data-dir)",
            args.data_dir.display()
        ),
        Some(c) if c.speed() == args.speed.max(1) => c,
        Some(c) => c.with_speed(args.speed),
        None => {
            let start = args
                .start
                .unwrap_or_else(|| nine_am(market_date(Timestamp::now())));
            MarketClock::new(start, args.speed)
        }
    };
    clock.save(db)?;
    Ok(clock)
}

/// The simulated platform, publishing as the options say, keeping its orders in the database.
fn platform(
    args: &UpArgs,
    shared: &Arc<Shared>,
    rules: &MarketRules,
    clock: MarketClock,
) -> anyhow::Result<Arc<PersistentPlatform>> {
    let per_zone = args
        .never_publish
        .iter()
        .map(|zone| (*zone, Publication::Never))
        .collect();
    let sim = Arc::new(SimPlatform::new(
        SimConfig {
            rules: rules.clone(),
            publication: Publication::After(SignedDuration::from_mins(
                args.publication_delay_minutes,
            )),
            per_zone,
            decoupled: args.decouple.iter().copied().collect(),
            keeps: args.refuse_withdrawals.iter().copied().collect(),
            ..SimConfig::default()
        },
        Arc::new(clock),
    ));
    Ok(Arc::new(PersistentPlatform {
        shared: shared.clone(),
        sim,
    }))
}

/// `SLACK_WEBHOOK_URL`, if set: it must be a URL.
fn slack_url() -> anyhow::Result<Option<String>> {
    let slack = std::env::var("SLACK_WEBHOOK_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if let Some(url) = &slack
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        bail!("SLACK_WEBHOOK_URL is set but is not a URL: {url:?}");
    }
    Ok(slack)
}

/// Every adapter of the stack over the data dir: what the AWS account is in the cloud.
fn adapters(
    args: &UpArgs,
    shared: &Arc<Shared>,
    clock: MarketClock,
    platform: Arc<PersistentPlatform>,
    slack: Option<&str>,
) -> anyhow::Result<Adapters> {
    // What a killed process was writing is not a result: its temporary files go (beside the
    // objects, and in the `tmp` folder earlier versions wrote them to).
    let tmp_dir = args.data_dir.join("tmp");
    if tmp_dir.exists() {
        std::fs::remove_dir_all(&tmp_dir)
            .with_context(|| format!("cannot clean {}", tmp_dir.display()))?;
    }
    let results_dir = args.data_dir.join("results");
    std::fs::create_dir_all(&results_dir)
        .with_context(|| format!("cannot create {}", results_dir.display()))?;
    crate::up::results::remove_temporaries(&results_dir)
        .with_context(|| format!("cannot clean {}", results_dir.display()))?;
    let notifier = Arc::new(LocalNotifier {
        shared: shared.clone(),
        log: args.data_dir.join("notifications.jsonl"),
        sink: match slack {
            Some(url) => Sink::Slack {
                url: url.to_string(),
                http: http_client()?,
                one_at_a_time: tokio::sync::Mutex::new(()),
            },
            None => Sink::Console,
        },
        log_lock: Arc::new(std::sync::Mutex::new(())),
    });
    notifier.reconcile()?;
    let store = Arc::new(LocalStore {
        shared: shared.clone(),
    });
    Ok(Adapters {
        clock: Arc::new(clock),
        orders: store.clone(),
        due: store,
        bus: Arc::new(LocalBus {
            shared: shared.clone(),
        }),
        scheduler: Arc::new(LocalScheduler {
            shared: shared.clone(),
        }),
        results: Arc::new(FileResults { dir: results_dir }),
        notifier,
        platform,
    })
}

/// The handlers over the adapters. The sweeper's grace periods cover processing latency, which
/// is wall time: on a compressed clock they stretch to at least REAL_GRACE of it, or the
/// sweeper would duplicate work still in the queue.
fn handlers(
    adapters: &Adapters,
    rules: MarketRules,
    shared: &Shared,
    clock: MarketClock,
) -> Handlers {
    let mut handlers = Handlers::new(adapters, rules, shared.base.retry);
    let real_grace = SignedDuration::try_from(REAL_GRACE)
        .unwrap_or(SignedDuration::ZERO)
        .checked_mul(clock.speed() as i32)
        .unwrap_or(SignedDuration::MAX);
    let sweep = &mut handlers.sweep.config;
    sweep.grace = sweep.grace.max(real_grace);
    let submit = &mut handlers.submit.config;
    submit.submitted_grace = submit.submitted_grace.max(real_grace);
    // A claim (store-result's put, notify-slack's post) must outlast the slowest call it
    // covers, which is wall time too: the HTTP client gives up after ten seconds.
    let claim = SignedDuration::try_from(CLAIM_REAL_TIME)
        .unwrap_or(SignedDuration::ZERO)
        .checked_mul(clock.speed() as i32)
        .unwrap_or(SignedDuration::MAX);
    for retry in [
        &mut handlers.store_result.config.retry,
        &mut handlers.notify.config.retry,
        &mut handlers.evaluate.config.retry,
    ] {
        retry.claim_for = retry.claim_for.max(claim);
    }
    handlers
}

/// The least wall time a claim lasts in `energy up`: longer than the HTTP client's timeout.
pub const CLAIM_REAL_TIME: std::time::Duration = std::time::Duration::from_secs(15);

impl Running {
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// Stops accepting requests, lets deliveries in flight finish, and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        // What the stack did last, committed before it goes.
        self.shared.db.flush().await;
    }

    /// What `energy up` prints at start-up.
    pub fn banner(&self) -> String {
        let mut out = String::new();
        out.push_str("Energy is up: the deployed choreography on this machine\n");
        self.banner_endpoints(&mut out);
        self.banner_clock(&mut out);
        self.banner_rules(&mut out);
        self.banner_outputs(&mut out);
        out.push_str(&format!("listening on http://{}\n", self.addr));
        out
    }

    fn banner_endpoints(&self, out: &mut String) {
        let d = self.data_dir.display();
        out.push_str(&format!(
            "  HTTP API      http://{}  (POST /orders, GET /orders/{{record_id}})\n",
            self.addr
        ));
        out.push_str(&format!("  console       http://{}/console\n", self.addr));
        out.push_str(&format!(
            "  AWS APIs      aws events|schemas|scheduler ... --endpoint-url http://{}  (bus {}, registry {}, schedule group {})\n",
            self.addr,
            self.shared.base.bus_name,
            self.shared.base.registry.name,
            self.shared.base.schedule_group
        ));
        out.push_str(&format!(
            "  data          {d}/energy.db · results {d}/results/ · notifications {d}/notifications.jsonl\n"
        ));
    }

    /// The market clock and the first auction whose gate is still open.
    fn banner_clock(&self, out: &mut String) {
        let tz = TimeZone::get(MARKET_TIME_ZONE).unwrap_or(TimeZone::UTC);
        let local = |t: Timestamp| {
            t.to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        };
        let clock = &self.shared.clock;
        let now = clock.now();
        out.push_str(&format!(
            "  market clock  {} · {}× ({} market minutes per real minute)\n",
            local(now),
            clock.speed(),
            clock.speed()
        ));
        let today = market_date(now);
        let tomorrow = today.tomorrow().unwrap_or(today);
        let rules = MarketRules::default();
        let open = [
            (Market::Sdac, tomorrow),
            (Market::Ida1, tomorrow),
            (Market::Ida2, tomorrow),
            (Market::Ida3, today),
            (Market::Ida3, tomorrow),
        ]
        .into_iter()
        .map(|(market, delivery_date)| AuctionId {
            market,
            delivery_date,
        })
        .find_map(|auction| {
            let gate = rules.gate_closure(auction).ok()?;
            let publication = rules.expected_publication(auction).ok()?;
            (gate > now).then_some((auction, gate, publication))
        });
        if let Some((auction, gate, publication)) = open {
            out.push_str(&format!(
                "  open auction  {auction}: gate closes {} (in {:.0?} real), results {}\n",
                local(gate),
                std::time::Duration::from_secs(clock.real_time_until(gate).as_secs()),
                local(publication)
            ));
        }
    }

    fn banner_rules(&self, out: &mut String) {
        let t = self.shared.topology();
        let origins: std::collections::BTreeSet<&str> =
            t.rules.iter().map(|r| r.origin.as_str()).collect();
        let origins: Vec<&str> = origins.into_iter().collect();
        out.push_str(&format!("  rules         (from {})\n", origins.join(", ")));
        for r in &t.rules {
            let targets: Vec<String> = r.targets.iter().map(|t| t.target.describe()).collect();
            let targets = if targets.is_empty() {
                "(no targets)".to_string()
            } else {
                targets.join(", ")
            };
            let disabled = if r.enabled { "" } else { " (disabled)" };
            out.push_str(&format!("    {:<20} → {targets}{disabled}\n", r.name));
        }
        if let Some(s) = &t.sweep {
            out.push_str(&format!(
                "    {:<20} → {} every {} market time\n",
                s.name,
                s.target.name(),
                humanize(s.every)
            ));
        }
    }

    /// Where notifications go, what a restart recovered, and the first two commands to try.
    fn banner_outputs(&self, out: &mut String) {
        let d = self.data_dir.display();
        let sink = if self.notifications_to_slack {
            format!("Slack (SLACK_WEBHOOK_URL) and {d}/notifications.jsonl")
        } else {
            format!("console and {d}/notifications.jsonl (set SLACK_WEBHOOK_URL to post to Slack)")
        };
        out.push_str(&format!("  notifications {sink}\n"));
        if let Ok(pending) = self.shared.db.pending_deliveries()
            && pending > 0
        {
            out.push_str(&format!(
                "  recovered     {pending} deliveries still to make\n"
            ));
        }
        let (day, _) = sample_orders(self.shared.clock.now());
        out.push_str(&format!(
            "  try           curl -s http://{}/orders -H 'content-type: application/json' -d @{d}/sample-orders.json\n",
            self.addr
        ));
        out.push_str(&format!(
            "                curl -s http://{}/orders/desk-a:{day}:de-peak-1\n",
            self.addr
        ));
    }
}

fn humanize(d: SignedDuration) -> String {
    let s = d.as_secs();
    if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// The console's line for a delivery.
pub fn console_line(log: &engine::DeliveryLog) -> String {
    let tz = TimeZone::get(MARKET_TIME_ZONE).unwrap_or(TimeZone::UTC);
    let at = log
        .at
        .to_zoned_datetime(tz)
        .strftime("%H:%M:%S")
        .to_string();
    let outcome = match &log.outcome {
        Ok(o) => o.clone(),
        Err(e) if log.dead => format!("FAILED (attempt {}, dead letter): {e}", log.attempt),
        Err(e) => format!("failed (attempt {}, retrying): {e}", log.attempt),
    };
    format!(
        "{at}  {:<19} {:<16} → {:<14} {}",
        log.detail_type, log.record_id, log.target, outcome
    )
}

/// `energy up`: runs until Ctrl-C.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let quiet = args.quiet;
    let observer: Observer = Arc::new(move |log: &engine::DeliveryLog| {
        if !quiet && !log.quiet {
            println!("{}", console_line(log));
        }
    });
    let running = start(&args, observer).await?;
    print!("{}", running.banner());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    wait_for_signal().await;
    println!(
        "energy up: stopping (deliveries in flight finish; the rest waits for the next start)"
    );
    running.shutdown().await;
    println!("energy up: stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
