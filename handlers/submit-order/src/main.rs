//! The submit-order Lambda: wiring only. Config from the environment once, clients once, run.
//!
//! Environment: `ORDERS_TABLE`, `EVENT_BUS_NAME`, `GATE_MARGIN_SECONDS` (60).

use energy_aws::env::Env;
use energy_aws::lambda::{sdk_config, startup_error};
use energy_aws::wiring::Wiring;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use submit_order::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse, Config, SubmitOrder};
use tracing::Instrument;

/// `GATE_MARGIN_SECONDS` (default 60): how long before the gate new orders stop.
fn config(env: &Env) -> Result<Config, energy_aws::env::ConfigError> {
    let mut config = Config::default();
    let margin: i64 = env.parse_or("GATE_MARGIN_SECONDS", 60)?;
    if margin < 0 {
        return Err(energy_aws::env::ConfigError {
            name: "GATE_MARGIN_SECONDS",
            problem: "must be 0 or more".into(),
        });
    }
    config.rules.limits.gate_margin = jiff::SignedDuration::from_secs(margin);
    Ok(config)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    energy_core::crash::check_env().map_err(startup_error)?;
    let wiring = Wiring::new(sdk_config().await, Env::from_process());
    let handler = SubmitOrder {
        clock: wiring.clock(),
        orders: wiring.orders().map_err(startup_error)?,
        bus: wiring.bus().map_err(startup_error)?,
        config: config(wiring.env()).map_err(startup_error)?,
    };
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            let http = &event.payload.request_context.http;
            let span = tracing::info_span!(
                "request",
                method = %http.method,
                path = http.path.as_deref().unwrap_or("-"),
                request_id = %event.context.request_id,
            );
            let response = handler.handle(event.payload).instrument(span).await;
            Ok::<ApiGatewayV2httpResponse, Diagnostic>(response)
        },
    ))
    .await
}
