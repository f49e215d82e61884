//! `energy platform serve`: the simulated auction platform over its HTTP contract.

use std::io::Write;
use std::sync::Arc;

use energy_auction::clock::ScaledClock;
use energy_auction::http::server::PlatformServer;
use energy_auction::sim::{Publication, SimConfig, SimPlatform};
use energy_core::market::Zone;
use energy_core::memory::ManualClock;
use energy_core::ports::Clock;
use jiff::{SignedDuration, Timestamp};

/// Settings of `energy platform serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the address is printed first).
    #[arg(long, default_value_t = 8081)]
    pub port: u16,
    /// Require this key in X-Api-Key (or set ENERGY_PLATFORM_API_KEY).
    #[arg(long, env = "ENERGY_PLATFORM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// What the platform's clock reads at start (RFC 3339); default: now.
    #[arg(long)]
    pub start: Option<Timestamp>,
    /// Simulated seconds per real second; 0 = a manual clock moved by POST /v1/simulation/clock.
    #[arg(long, default_value_t = 1)]
    pub speed: u32,
    /// Minutes results come after the calendar's expected publication time.
    #[arg(long, default_value_t = 0)]
    pub publication_delay_minutes: i64,
    /// A zone whose results never come (repeatable), e.g. --never FI.
    #[arg(long, value_parser = parse_zone)]
    pub never: Vec<Zone>,
    /// A decoupled zone (repeatable): its final results, cleared locally, come 100 minutes after
    /// the usual final time in every market; its preliminary ones (SDAC) are withdrawn then.
    #[arg(long, value_parser = parse_zone)]
    pub decouple: Vec<Zone>,
    /// A zone whose orders the platform refuses to withdraw (repeatable).
    #[arg(long, value_parser = parse_zone)]
    pub refuse_withdrawals: Vec<Zone>,
}

fn parse_zone(s: &str) -> Result<Zone, String> {
    s.parse().map_err(|()| {
        format!(
            "unknown zone {s:?}; expected one of {}",
            energy_core::market::spellings(Zone::ALL)
        )
    })
}

/// Runs the server until Ctrl-C.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let start = args.start.unwrap_or_else(Timestamp::now);
    let (clock, manual): (Arc<dyn Clock>, Option<Arc<ManualClock>>) = if args.speed == 0 {
        let manual = Arc::new(ManualClock::new(start));
        (manual.clone(), Some(manual))
    } else {
        (Arc::new(ScaledClock::new(start, args.speed)), None)
    };
    let mut config = SimConfig {
        publication: Publication::After(SignedDuration::from_mins(args.publication_delay_minutes)),
        ..SimConfig::default()
    };
    for zone in &args.never {
        config.per_zone.insert(*zone, Publication::Never);
    }
    config.decoupled.extend(args.decouple.iter().copied());
    config.keeps.extend(args.refuse_withdrawals.iter().copied());
    let platform = Arc::new(SimPlatform::new(config, clock.clone()));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let addr = listener.local_addr()?;
    let clock_note = match args.speed {
        0 => format!("manual clock at {start}"),
        1 => format!("clock from {start}"),
        n => format!("clock from {start}, {n}x"),
    };
    println!(
        "energy platform: serving the simulated auction platform on http://{addr} ({clock_note})"
    );
    std::io::stdout().flush()?;
    let server = PlatformServer {
        platform,
        clock,
        manual_clock: manual,
        api_key: args.api_key,
    };
    server
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    println!("energy platform: stopped");
    Ok(())
}
