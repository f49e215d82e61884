//! The sweep-pending Lambda: wiring only.
//!
//! Environment: `ORDERS_TABLE`, `EVENT_BUS_NAME`, `SWEEP_GRACE_SECONDS` (60).

use energy_aws::env::Env;
use energy_aws::lambda::{run_events, sdk_config, startup_error};
use energy_aws::wiring::Wiring;
use jiff::SignedDuration;
use sweep_pending::{Config, SweepPending};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let wiring = Wiring::new(sdk_config().await, Env::from_process());
    let grace: i64 = wiring
        .env()
        .parse_or("SWEEP_GRACE_SECONDS", 60)
        .map_err(startup_error)?;
    let handler = SweepPending {
        clock: wiring.clock(),
        due: wiring.sweep_index().map_err(startup_error)?,
        bus: wiring.bus().map_err(startup_error)?,
        config: Config {
            grace: SignedDuration::from_secs(grace),
            ..Config::default()
        },
    };
    run_events(handler).await
}
