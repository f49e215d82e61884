//! The whole system in one process: the five handlers over the in-memory ports, an in-process
//! bus that routes like the template's rules, the scheduler, the sweep rule, and Lambda's
//! asynchronous-invocation behaviour (two retries, then the on-failure destination on the bus).
//!
//! Time is a [`ManualClock`]: [`System::advance`] jumps to the next instant something is due (a
//! schedule firing or a sweep tick), so hours of auction time pass in milliseconds.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use energy_auction::sim::{SimConfig, SimPlatform};
use energy_core::calendar::MarketRules;
use energy_core::events::DomainEvent;
use energy_core::memory::{
    InMemoryBus, InMemoryNotifier, InMemoryOrderStore, InMemoryResults, InMemoryScheduler,
    ManualClock,
};
use energy_core::ports::Ports;
use energy_core::retry::RetryPolicy;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

pub use crate::handlers::api_request;
use crate::handlers::{Handlers, on_failure_record, scheduled_event};
use crate::routes::Function;
use crate::topology::{Target, Topology};

/// Lambda's default for asynchronous invocations: the first try and two retries.
pub const ASYNC_ATTEMPTS: usize = 3;

/// One delivery of an event to a function, as the demo prints it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: Timestamp,
    pub detail_type: String,
    pub record_id: String,
    pub function: Function,
    pub outcome: String,
}

/// The in-memory adapters, kept typed so tests can look inside.
pub struct System {
    pub clock: Arc<ManualClock>,
    pub store: Arc<InMemoryOrderStore>,
    pub bus: Arc<InMemoryBus>,
    pub scheduler: Arc<InMemoryScheduler>,
    pub results: Arc<InMemoryResults>,
    pub notifier: Arc<InMemoryNotifier>,
    pub platform: Arc<SimPlatform>,
    pub ports: Ports,
    pub handlers: Handlers,
    /// The routing, from `template.yaml`.
    pub topology: Topology,
    /// The sweep rule's rate.
    pub sweep_every: SignedDuration,
    next_sweep: std::sync::Mutex<Timestamp>,
}

impl System {
    pub fn new(start: Timestamp, rules: MarketRules, retry: RetryPolicy) -> System {
        let clock = Arc::new(ManualClock::new(start));
        let store = Arc::new(InMemoryOrderStore::new());
        let bus = Arc::new(InMemoryBus::new(clock.clone()));
        let scheduler = Arc::new(InMemoryScheduler::new());
        let results = Arc::new(InMemoryResults::new());
        let notifier = Arc::new(InMemoryNotifier::new());
        let platform = Arc::new(SimPlatform::new(
            SimConfig {
                rules: rules.clone(),
                ..SimConfig::default()
            },
            clock.clone(),
        ));
        let ports = Ports {
            clock: clock.clone(),
            store: store.clone(),
            bus: bus.clone(),
            scheduler: scheduler.clone(),
            results: results.clone(),
            notifier: notifier.clone(),
            platform: platform.clone(),
        };
        let topology = Topology::embedded().expect("the embedded template.yaml is valid");
        let sweep_every = topology
            .sweep
            .as_ref()
            .map_or(SignedDuration::from_mins(2), |s| s.every);
        System {
            clock,
            store,
            bus,
            scheduler,
            results,
            notifier,
            platform,
            handlers: Handlers::new(ports.clone(), rules, retry),
            ports,
            topology,
            sweep_every,
            next_sweep: std::sync::Mutex::new(start.saturating_add(sweep_every).unwrap_or(start)),
        }
    }

    pub fn now(&self) -> Timestamp {
        use energy_core::ports::Clock;
        self.clock.now()
    }

    /// Calls submit-order with an API Gateway HTTP API (payload 2.0) request.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> ApiGatewayV2httpResponse {
        self.handlers.http(api_request(method, path, body)).await
    }

    /// Delivers every queued event to its targets until the bus is quiet.
    pub async fn run_until_quiet(&self, mut observe: impl FnMut(&Delivery)) {
        while let Some(envelope) = self.bus.pop() {
            for delivery in self.deliver(&envelope).await {
                observe(&delivery);
            }
        }
    }

    /// Delivers one event to every function whose rule matches it, retrying a failed
    /// invocation like Lambda's asynchronous invocation and then sending the failure to the bus.
    pub async fn deliver(&self, envelope: &Value) -> Vec<Delivery> {
        let detail_type = envelope["detail-type"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let record_id = envelope["detail"]["record_id"]
            .as_str()
            .unwrap_or("-")
            .to_string();
        let mut out = Vec::new();
        for function in self.targets(envelope) {
            let mut outcome = String::new();
            for attempt in 1..=ASYNC_ATTEMPTS {
                match self.handlers.invoke(function, envelope).await {
                    Ok(o) => {
                        outcome = o;
                        break;
                    }
                    Err((error_type, message)) if attempt == ASYNC_ATTEMPTS => {
                        outcome = format!(
                            "failed {attempt} times: {message}; on-failure destination → bus"
                        );
                        self.bus.inject_raw(on_failure_record(
                            function,
                            envelope,
                            attempt,
                            &error_type,
                            &message,
                        ));
                    }
                    Err(_) => {}
                }
            }
            out.push(Delivery {
                at: self.now(),
                detail_type: detail_type.clone(),
                record_id: record_id.clone(),
                function,
                outcome,
            });
        }
        out
    }

    /// The functions the template's rules send `envelope` to (the sweep schedule's event goes
    /// to the sweep function).
    fn targets(&self, envelope: &Value) -> Vec<Function> {
        self.topology
            .routes(envelope)
            .into_iter()
            .filter_map(|(_, target)| match target {
                Target::Function(f) => Some(f),
                Target::Http { .. } => None,
            })
            .collect()
    }

    /// Moves the clock to the next instant something is due and fires it: schedules due then
    /// put their event on the bus; a sweep tick runs the sweeper. Returns false when nothing is
    /// scheduled and no order is waiting.
    pub async fn advance(&self) -> bool {
        let next_schedule = self.scheduler.next_at();
        let waiting = self.store.all().iter().any(|r| !r.state.is_final());
        if next_schedule.is_none() && !waiting {
            return false;
        }
        let sweep_at = *self.next_sweep.lock().unwrap_or_else(|e| e.into_inner());
        let at = next_schedule.map_or(sweep_at, |s| s.min(sweep_at));
        if at > self.now() {
            self.clock.set(at);
        }
        for due in self.scheduler.take_due(self.now()) {
            self.bus.inject(&DomainEvent::EvaluationDue(due.event));
        }
        if self.now() >= sweep_at {
            *self.next_sweep.lock().unwrap_or_else(|e| e.into_inner()) = sweep_at
                .saturating_add(self.sweep_every)
                .unwrap_or(sweep_at);
            self.bus
                .inject_raw(scheduled_event(self.now(), "energy-sweep"));
        }
        true
    }
}
