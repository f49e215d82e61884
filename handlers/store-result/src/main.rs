//! The store-result Lambda: wiring only.
//!
//! Environment: `ORDERS_TABLE`, `EVENT_BUS_NAME`, `RESULTS_BUCKET`.

use energy_aws::env::Env;
use energy_aws::lambda::{run_events, sdk_config, startup_error};
use energy_aws::wiring::{Wiring, retry_policy};
use store_result::{Config, StoreResult};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let wiring = Wiring::new(sdk_config().await, Env::from_process());
    let handler = StoreResult {
        clock: wiring.clock(),
        orders: wiring.orders().map_err(startup_error)?,
        bus: wiring.bus().map_err(startup_error)?,
        results: wiring.results().map_err(startup_error)?,
        config: Config {
            retry: retry_policy(wiring.env()).map_err(startup_error)?,
        },
    };
    run_events(handler).await
}
