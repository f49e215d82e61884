//! The whole system in one process, for tests: the five handlers over the in-memory ports, an
//! in-process bus that routes like the template's rules, the scheduler, the sweep rule, and the
//! delivery engine `energy up` runs ([`energy_local::delivery`]), with each function's
//! `EventInvokeConfig` from the template.
//!
//! Time is a [`ManualClock`]: [`System::advance`] jumps to the next instant something is due (a
//! schedule firing or a sweep tick), so hours of auction time pass in milliseconds; retries are
//! made at once.

#![allow(dead_code)]

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use energy_auction::sim::{SimConfig, SimPlatform};
use energy_core::calendar::MarketRules;
use energy_core::events::DomainEvent;
use energy_core::memory::{
    InMemoryBus, InMemoryNotifier, InMemoryOrderStore, InMemoryResults, InMemoryScheduler,
    ManualClock,
};
use energy_core::retry::RetryPolicy;
use energy_local::delivery::{self, Attempted};
use energy_local::function::Function;
pub use energy_local::handlers::api_request;
use energy_local::handlers::{Adapters, Handlers, scheduled_event};
use energy_local::topology::{Target, Topology};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

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
    pub adapters: Adapters,
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
        let adapters = Adapters {
            clock: clock.clone(),
            orders: store.clone(),
            due: store.clone(),
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
            handlers: Handlers::new(&adapters, rules, retry),
            adapters,
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

    /// Delivers one event to every function whose rule matches it, with the delivery engine of
    /// `energy up`: retried as the function's `EventInvokeConfig` says, then its failure sent to
    /// its on-failure destination (the bus) if it has one.
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
        for (rule, function) in self.targets(envelope) {
            let mut outcome = String::new();
            for attempt in 1.. {
                let attempted = delivery::attempt(
                    &self.topology,
                    &self.handlers,
                    None,
                    &rule,
                    function.name(),
                    envelope,
                    attempt,
                    SignedDuration::ZERO,
                )
                .await;
                match attempted {
                    Attempted::Delivered(invocation) => {
                        outcome = invocation.summary;
                        break;
                    }
                    Attempted::Failed { give_up: false, .. } => {}
                    Attempted::ToBus => {
                        outcome = "the template has no bus targets".to_string();
                        break;
                    }
                    Attempted::Failed {
                        error, on_failure, ..
                    } => {
                        outcome = format!("failed {attempt} times: {error}");
                        if let Some(record) = on_failure {
                            outcome.push_str("; on-failure destination → bus");
                            self.bus.inject_raw(record);
                        }
                        break;
                    }
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

    /// The function targets of the template's rules that match `envelope`, with their rules
    /// (the sweep schedule's event goes to the sweep function).
    fn targets(&self, envelope: &Value) -> Vec<(String, Function)> {
        self.topology
            .routes(envelope)
            .into_iter()
            .filter_map(|r| match r.target {
                Target::Function(f) => Some((r.rule, f)),
                _ => None,
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
            self.bus.inject(&DomainEvent::ChecksDue(due.event));
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
