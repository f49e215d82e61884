//! The notify-slack Lambda: wiring only.
//!
//! Environment: `ORDERS_TABLE`, `SLACK_WEBHOOK_SECRET_ARN`, `SLACK_TIMEOUT_MS` (5000).

use energy_aws::env::Env;
use energy_aws::lambda::{run_events, sdk_config, startup_error};
use energy_aws::wiring::{Wiring, retry_policy};
use notify_slack::{Config, NotifySlack};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let wiring = Wiring::new(sdk_config().await, Env::from_process());
    let handler = NotifySlack {
        clock: wiring.clock(),
        orders: wiring.orders().map_err(startup_error)?,
        notifier: wiring.slack().map_err(startup_error)?,
        config: Config {
            retry: retry_policy(wiring.env()).map_err(startup_error)?,
        },
    };
    run_events(handler).await
}
