//! The evaluate-order Lambda: wiring only.
//!
//! Environment: `ORDERS_TABLE`, `EVENT_BUS_NAME`, `EVENT_BUS_ARN`, `SCHEDULE_GROUP`,
//! `SCHEDULER_ROLE_ARN`, `MAX_ATTEMPTS` (14), `RETRY_BASE_SECONDS` (60), `PLATFORM`
//! (`simulated`, the default, or `http`), and for `http`: `PLATFORM_URL`,
//! `PLATFORM_API_KEY_SECRET_ARN` (optional), `PLATFORM_TIMEOUT_MS` (5000).

use std::sync::Arc;
use std::time::Duration;

use energy_auction::http::client::{HttpPlatform, HttpPlatformConfig};
use energy_auction::sim::{SimConfig, SimPlatform};
use energy_aws::env::{ConfigError, Env};
use energy_aws::lambda::{run_events, sdk_config, startup_error};
use energy_aws::slack::{CachedSecret, SecretsClient};
use energy_aws::wiring::{Wiring, retry_policy};
use energy_core::calendar::MarketRules;
use energy_core::ports::{AuctionPlatform, SystemClock};
use evaluate_order::{Config, EvaluateOrder};

async fn platform(wiring: &Wiring) -> Result<Arc<dyn AuctionPlatform>, ConfigError> {
    let env = wiring.env();
    match env.optional("PLATFORM").as_deref().unwrap_or("simulated") {
        "simulated" => {
            let config = SimConfig {
                stateless: true,
                ..SimConfig::default()
            };
            Ok(Arc::new(SimPlatform::new(config, Arc::new(SystemClock))))
        }
        "http" => {
            let mut config = HttpPlatformConfig::new(env.required("PLATFORM_URL")?);
            config.timeout = Duration::from_millis(env.parse_or("PLATFORM_TIMEOUT_MS", 5_000u64)?);
            if let Some(secret) = env.optional("PLATFORM_API_KEY_SECRET_ARN") {
                let key = CachedSecret::new(SecretsClient::new(wiring.sdk()), secret);
                let key = key.get().await.map_err(|e| ConfigError {
                    name: "PLATFORM_API_KEY_SECRET_ARN",
                    problem: e.to_string(),
                })?;
                config.api_key = Some(key);
            }
            let platform = HttpPlatform::new(config).map_err(|e| ConfigError {
                name: "PLATFORM_URL",
                problem: e.to_string(),
            })?;
            Ok(Arc::new(platform))
        }
        other => Err(ConfigError {
            name: "PLATFORM",
            problem: format!("{other:?} is neither \"simulated\" nor \"http\""),
        }),
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let wiring = Wiring::new(sdk_config().await, Env::from_process());
    let handler = EvaluateOrder {
        clock: wiring.clock(),
        orders: wiring.orders().map_err(startup_error)?,
        due: wiring.due_index().map_err(startup_error)?,
        bus: wiring.bus().map_err(startup_error)?,
        scheduler: wiring.scheduler().map_err(startup_error)?,
        platform: platform(&wiring).await.map_err(startup_error)?,
        config: Config {
            retry: retry_policy(wiring.env()).map_err(startup_error)?,
            rules: MarketRules::default(),
            ..Config::default()
        },
    };
    run_events(handler).await
}
