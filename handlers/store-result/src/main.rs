//! The store-result Lambda: wiring only.
//!
//! Environment: `ORDERS_TABLE`, `EVENT_BUS_NAME`, `RESULTS_BUCKET`.

use energy_aws::env::Env;
use energy_aws::lambda::{run_events, sdk_config, startup_error};
use energy_aws::wiring::{Wiring, retry_policy};
use store_result::{Config, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::from_process();
    let retry = retry_policy(&env).map_err(startup_error)?;
    let ports = Wiring::new(sdk_config().await, "store-result")
        .store(&env)
        .and_then(|w| w.bus(&env))
        .and_then(|w| w.results(&env))
        .map_err(startup_error)?
        .ports();
    let config = Config { retry };
    let (ports, config) = (&ports, &config);
    run_events(move |event| handle(event, ports, config)).await
}
