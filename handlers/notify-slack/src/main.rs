//! The notify-slack Lambda: wiring only.
//!
//! Environment: `ORDERS_TABLE`, `SLACK_WEBHOOK_SECRET_ARN`, `SLACK_TIMEOUT_MS` (5000).

use energy_aws::env::Env;
use energy_aws::lambda::{run_events, sdk_config, startup_error};
use energy_aws::wiring::{Wiring, retry_policy};
use notify_slack::{Config, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::from_process();
    let retry = retry_policy(&env).map_err(startup_error)?;
    let ports = Wiring::new(sdk_config().await, "notify-slack")
        .store(&env)
        .and_then(|w| w.slack(&env))
        .map_err(startup_error)?
        .ports();
    let config = Config { retry };
    let (ports, config) = (&ports, &config);
    run_events(move |event| handle(event, ports, config)).await
}
