//! The sweep-pending Lambda: wiring only.
//!
//! Environment: `ORDERS_TABLE`, `EVENT_BUS_NAME`, `SWEEP_GRACE_SECONDS` (60).

use energy_aws::env::Env;
use energy_aws::lambda::{run_events, sdk_config, startup_error};
use energy_aws::wiring::Wiring;
use jiff::SignedDuration;
use sweep_pending::{Config, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::from_process();
    let grace: i64 = env
        .parse_or("SWEEP_GRACE_SECONDS", 60)
        .map_err(startup_error)?;
    let ports = Wiring::new(sdk_config().await, "sweep-pending")
        .store(&env)
        .and_then(|w| w.bus(&env))
        .map_err(startup_error)?
        .ports();
    let config = Config {
        grace: SignedDuration::from_secs(grace),
        ..Config::default()
    };
    let (ports, config) = (&ports, &config);
    run_events(move |event| handle(event, ports, config)).await
}
