//! The routing of the deployed system, read from `template.yaml`: every rule on the bus (its
//! pattern, its target function, its retry policy), each function's asynchronous-invocation
//! settings (retries, on-failure destination), the sweep rate and the retry policy's parameters.
//! The template stays the single source of routing: the in-process demo and `energy up` both run
//! on what this module reads, and a pattern the matcher does not support stops start-up with the
//! rule's name.
//!
//! A local consumers file (see [`crate::consumers`]) can add rules whose targets are HTTP
//! endpoints, like EventBridge API destinations.

use std::collections::BTreeMap;

use energy_core::retry::RetryPolicy;
use jiff::SignedDuration;
use serde_json::Value;

use crate::function::Function;
use energy_patterns::Pattern;

/// The template the binary was built with: `energy` works from any directory.
pub const EMBEDDED_TEMPLATE: &str = include_str!("../../../template.yaml");

/// How many times, and for how long, a delivery is retried before it goes to the dead-letter
/// store (an EventBridge rule's `RetryPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    pub max_retries: u32,
    pub max_age: SignedDuration,
}

impl Default for DeliveryPolicy {
    /// EventBridge's defaults: 185 retries within 24 hours.
    fn default() -> Self {
        DeliveryPolicy {
            max_retries: 185,
            max_age: SignedDuration::from_hours(24),
        }
    }
}

/// Where a rule sends what it matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// One of our functions, invoked asynchronously.
    Function(Function),
    /// An HTTP endpoint: the event is sent as JSON with `method` (like an API destination).
    Http {
        url: String,
        method: String,
        headers: BTreeMap<String, String>,
        query: Vec<(String, String)>,
        /// Basic authorization (user name, password).
        basic: Option<(String, String)>,
    },
    /// The bus itself: the event is put on it again, as an event bus target does.
    Bus,
    /// A target no delivery can reach (an API destination that was deleted, a function that
    /// takes no events): each delivery fails with `reason`.
    Unavailable { arn: String, reason: String },
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Function(f) => f.name().to_string(),
            Target::Http { url, .. } => url.clone(),
            Target::Bus => "the bus".to_string(),
            Target::Unavailable { arn, .. } => arn.clone(),
        }
    }
}

/// One target of a rule: its id (unique within the rule), where it sends, and how often a
/// failed delivery is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleTarget {
    pub id: String,
    pub target: Target,
    pub policy: DeliveryPolicy,
}

/// One rule on the bus.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// The pattern as written, for `energy` to print.
    pub pattern_json: Value,
    pub pattern: Pattern,
    pub targets: Vec<RuleTarget>,
    /// A disabled rule matches nothing (`aws events disable-rule`).
    pub enabled: bool,
    pub description: String,
    /// Where the rule was defined: `template.yaml`, the consumers file, or [`API_ORIGIN`].
    pub origin: String,
}

/// The origin of the rules created through `energy up`'s EventBridge API (the only ones it may
/// change).
pub const API_ORIGIN: &str = "the EventBridge API";

/// One delivery an event needs: a rule and one of its targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub rule: String,
    pub target_id: String,
    pub target: Target,
}

/// A function's asynchronous-invocation settings (`EventInvokeConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invoke {
    /// Lambda's retries after a failed invocation (its default is 2).
    pub max_retries: u32,
    /// Whether a failure after the last retry goes to the bus as an on-failure record.
    pub on_failure_to_bus: bool,
}

impl Default for Invoke {
    fn default() -> Self {
        Invoke {
            max_retries: 2,
            on_failure_to_bus: false,
        }
    }
}

/// The sweep rule: a schedule that invokes a function.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub name: String,
    pub every: SignedDuration,
    pub target: Function,
    pub policy: DeliveryPolicy,
}

/// How deliveries for one rule are made.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub target: Target,
    pub max_retries: u32,
    pub max_age: SignedDuration,
    /// The function whose failure after its last retry goes to the bus as an on-failure record.
    pub on_failure_to_bus: Option<Function>,
}

/// Everything routing needs.
#[derive(Debug, Clone)]
pub struct Topology {
    pub rules: Vec<Rule>,
    pub invoke: BTreeMap<Function, Invoke>,
    pub sweep: Option<Sweep>,
    pub retry: RetryPolicy,
    /// The bus's name as the template deploys it (`energy-dev`).
    pub bus_name: String,
    /// The schema registry the template declares, with its schemas (what `energy up`'s Schemas
    /// API answers).
    pub registry: Registry,
    /// The template's schedule group, whose one-time schedules `energy up`'s Scheduler API lists.
    pub schedule_group: String,
    /// The template's archive of the bus (`AWS::Events::Archive`): its name and retention.
    pub archive: Archive,
}

/// The archive of the bus, as the template declares it.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    pub name: String,
    pub description: String,
    pub retention_days: u32,
}

/// A schema registry of the template (`AWS::EventSchemas::Registry` and its `Schema`s).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub name: String,
    pub description: String,
    pub schemas: Vec<RegistrySchema>,
}

/// One `AWS::EventSchemas::Schema` of the template.
#[derive(Debug, Clone)]
pub struct RegistrySchema {
    pub name: String,
    pub kind: String,
    pub description: String,
    pub content: String,
}

/// Why the template cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct TopologyError {
    pub origin: String,
    pub message: String,
}

fn terr(origin: &str, message: impl Into<String>) -> TopologyError {
    TopologyError {
        origin: origin.to_string(),
        message: message.into(),
    }
}

impl Topology {
    /// The embedded template's topology.
    pub fn embedded() -> Result<Topology, TopologyError> {
        Topology::from_template(EMBEDDED_TEMPLATE, "template.yaml")
    }

    /// Reads a SAM template.
    pub fn from_template(text: &str, origin: &str) -> Result<Topology, TopologyError> {
        let t: Value = serde_saphyr::from_str(text)
            .map_err(|e| terr(origin, format!("not a readable template: {e}")))?;
        let params = Params(&t["Parameters"]);
        let mut topology = Topology {
            rules: Vec::new(),
            invoke: BTreeMap::new(),
            sweep: None,
            retry: retry_policy(&params),
            bus_name: params
                .default("EventBusName")
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_else(|| "energy".into()),
            registry: Registry::default(),
            schedule_group: String::new(),
            archive: Archive::default(),
        };
        let resources = t["Resources"]
            .as_object()
            .ok_or_else(|| terr(origin, "no Resources"))?;
        for (logical_id, resource) in resources {
            if resource["Type"] == "AWS::Serverless::Function" {
                topology.add_function(logical_id, resource, &params, origin)?;
            }
        }
        topology.rules.sort_by(|a, b| a.name.cmp(&b.name));
        topology.read_registry_and_group(resources, &params);
        Ok(topology)
    }

    /// The bus's name, the registry, its schemas, the schedule group and the archive, names
    /// resolved with the parameters' defaults (`energy-${EnvironmentName}` → `energy-dev`).
    fn read_registry_and_group(
        &mut self,
        resources: &serde_json::Map<String, Value>,
        params: &Params<'_>,
    ) {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        for resource in resources.values() {
            let p = &resource["Properties"];
            match resource["Type"].as_str() {
                Some("AWS::EventSchemas::Registry") => {
                    self.registry.name = params.substitute(&text(&p["RegistryName"]));
                    self.registry.description = text(&p["Description"]);
                }
                Some("AWS::EventSchemas::Schema") => self.registry.schemas.push(RegistrySchema {
                    name: text(&p["SchemaName"]),
                    kind: text(&p["Type"]),
                    description: text(&p["Description"]),
                    content: text(&p["Content"]),
                }),
                Some("AWS::Scheduler::ScheduleGroup") => {
                    self.schedule_group = params.substitute(&text(&p["Name"]));
                }
                Some("AWS::Events::EventBus") => {
                    let name = params.substitute(&text(&p["Name"]));
                    if !name.is_empty() {
                        self.bus_name = name;
                    }
                }
                Some("AWS::Events::Archive") => {
                    self.archive = Archive {
                        name: params.substitute(&text(&p["ArchiveName"])),
                        description: text(&p["Description"]),
                        retention_days: number(&p["RetentionDays"]).unwrap_or(0.0) as u32,
                    };
                }
                _ => {}
            }
        }
        self.registry.schemas.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// One function of the template: its asynchronous-invocation settings, its rules and its
    /// schedule.
    fn add_function(
        &mut self,
        logical_id: &str,
        resource: &Value,
        params: &Params<'_>,
        origin: &str,
    ) -> Result<(), TopologyError> {
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default();
        let props = &resource["Properties"];
        let events = props["Events"].as_object();
        let Some(function) = Function::from_binary(binary) else {
            // A function that no rule targets (submit-order is behind the HTTP API).
            if events.is_some_and(|e| {
                e.values()
                    .any(|v| matches!(v["Type"].as_str(), Some("EventBridgeRule" | "Schedule")))
            }) {
                return Err(terr(
                    origin,
                    format!("{logical_id}: no local handler for binary {binary:?}"),
                ));
            }
            return Ok(());
        };
        let config = &props["EventInvokeConfig"];
        self.invoke.insert(
            function,
            Invoke {
                max_retries: number(&config["MaximumRetryAttempts"]).unwrap_or(2.0) as u32,
                on_failure_to_bus: config["DestinationConfig"]["OnFailure"]["Type"]
                    == "EventBridge",
            },
        );
        for (name, event) in events.into_iter().flatten() {
            self.add_event(name, event, function, params, origin)?;
        }
        Ok(())
    }

    /// One of a function's `Events`: an EventBridge rule or the sweep schedule.
    fn add_event(
        &mut self,
        name: &str,
        event: &Value,
        function: Function,
        params: &Params<'_>,
        origin: &str,
    ) -> Result<(), TopologyError> {
        let p = &event["Properties"];
        let policy = delivery_policy(&p["RetryPolicy"]);
        match event["Type"].as_str() {
            Some("EventBridgeRule") => {
                let pattern = Pattern::compile(&p["Pattern"])
                    .map_err(|e| terr(origin, format!("rule {name}: unsupported pattern: {e}")))?;
                self.rules.push(Rule {
                    name: name.to_string(),
                    pattern_json: p["Pattern"].clone(),
                    pattern,
                    targets: vec![RuleTarget {
                        id: function.name().to_string(),
                        target: Target::Function(function),
                        policy,
                    }],
                    enabled: p["State"].as_str() != Some("DISABLED"),
                    description: format!("from {origin}"),
                    origin: origin.to_string(),
                });
            }
            Some("Schedule") => {
                let expr = params.resolve(&p["Schedule"]);
                let every = expr.as_str().and_then(parse_rate).ok_or_else(|| {
                    terr(
                        origin,
                        format!(
                            "schedule {name}: {expr} is not a rate(N minutes|hours|days) expression"
                        ),
                    )
                })?;
                self.sweep = Some(Sweep {
                    name: name.to_string(),
                    every,
                    target: function,
                    policy,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Where `event` goes: every target of every enabled rule that matches it; a schedule
    /// rule's tick (`aws.events`, `Scheduled Event`) goes to the sweep.
    pub fn routes(&self, event: &Value) -> Vec<Routed> {
        if event["source"] == "aws.events" && event["detail-type"] == "Scheduled Event" {
            return self
                .sweep
                .iter()
                .map(|s| Routed {
                    rule: s.name.clone(),
                    target_id: s.target.name().to_string(),
                    target: Target::Function(s.target),
                })
                .collect();
        }
        self.rules
            .iter()
            .filter(|r| r.enabled && r.pattern.matches(event))
            .flat_map(|r| {
                r.targets.iter().map(|t| Routed {
                    rule: r.name.clone(),
                    target_id: t.id.clone(),
                    target: t.target.clone(),
                })
            })
            .collect()
    }

    /// Where `event` goes as the delivery queue records it: one row per matching rule and
    /// target.
    pub fn deliveries(&self, event: &Value) -> Vec<crate::db::Route> {
        self.routes(event)
            .into_iter()
            .map(|r| crate::db::Route {
                rule: r.rule,
                target: r.target_id,
            })
            .collect()
    }

    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// How a delivery for target `target` of the rule (or the sweep schedule) named `name` is
    /// made, if both still exist. A function is retried as Lambda's asynchronous invocation
    /// retries it (its `EventInvokeConfig`); any other target as the rule's `RetryPolicy` says.
    /// A queue row written before targets had ids names the target by what it describes.
    pub fn delivery(&self, name: &str, target: &str) -> Option<Delivery> {
        let (target, policy) = match self.sweep.as_ref().filter(|s| s.name == name) {
            Some(sweep) => (Target::Function(sweep.target), sweep.policy),
            None => {
                let rule = self.rule(name)?;
                let t = rule
                    .targets
                    .iter()
                    .find(|t| t.id == target)
                    .or_else(|| rule.targets.iter().find(|t| t.target.describe() == target))?;
                (t.target.clone(), t.policy)
            }
        };
        Some(match target {
            Target::Function(f) => {
                let invoke = self.invoke(f);
                Delivery {
                    target,
                    max_retries: invoke.max_retries,
                    max_age: policy.max_age,
                    on_failure_to_bus: invoke.on_failure_to_bus.then_some(f),
                }
            }
            _ => Delivery {
                target,
                max_retries: policy.max_retries,
                max_age: policy.max_age,
                on_failure_to_bus: None,
            },
        })
    }

    pub fn invoke(&self, f: Function) -> Invoke {
        self.invoke.get(&f).copied().unwrap_or_default()
    }
}

/// The evaluator's retry policy from the template's `MaxAttempts` and `RetryBaseSeconds`.
fn retry_policy(params: &Params<'_>) -> RetryPolicy {
    let mut retry = RetryPolicy::default();
    if let Some(n) = params.default("MaxAttempts").and_then(number) {
        retry.max_attempts = n as u32;
    }
    if let Some(n) = params.default("RetryBaseSeconds").and_then(number) {
        retry.base = SignedDuration::from_secs(n as i64);
    }
    retry
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn delivery_policy(v: &Value) -> DeliveryPolicy {
    let d = DeliveryPolicy::default();
    DeliveryPolicy {
        max_retries: number(&v["MaximumRetryAttempts"]).map_or(d.max_retries, |n| n as u32),
        max_age: number(&v["MaximumEventAgeInSeconds"])
            .map_or(d.max_age, |n| SignedDuration::from_secs(n as i64)),
    }
}

struct Params<'a>(&'a Value);

impl Params<'_> {
    fn default(&self, name: &str) -> Option<&Value> {
        self.0.get(name).and_then(|p| p.get("Default"))
    }

    /// `${Name}` in a `!Sub` text becomes the parameter's default.
    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let Some(end) = rest[i..].find('}').map(|e| e + i) else {
                break;
            };
            let name = &rest[i + 2..end];
            match self.default(name) {
                Some(Value::String(v)) => out.push_str(v),
                Some(v) => out.push_str(&v.to_string()),
                None => out.push_str(&rest[i..=end]),
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A `!Ref Parameter` (read as the parameter's name) becomes the parameter's default.
    fn resolve(&self, v: &Value) -> Value {
        let name = v.as_str().or_else(|| v.get("Ref").and_then(Value::as_str));
        match name.and_then(|n| self.default(n)) {
            Some(d) => d.clone(),
            None => v.clone(),
        }
    }
}

/// `rate(2 minutes)` → two minutes.
pub fn parse_rate(expr: &str) -> Option<SignedDuration> {
    let inner = expr.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    let secs = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(SignedDuration::from_secs(n * secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_like_eventbridge() {
        assert_eq!(
            parse_rate("rate(2 minutes)"),
            Some(SignedDuration::from_mins(2))
        );
        assert_eq!(
            parse_rate("rate(1 hour)"),
            Some(SignedDuration::from_hours(1))
        );
        assert_eq!(parse_rate("cron(0 * * * ? *)"), None);
        assert_eq!(parse_rate("rate(0 minutes)"), None);
    }

    #[test]
    fn the_embedded_template_gives_every_rule_a_target_and_the_sweep_its_rate() {
        let t = Topology::embedded().unwrap();
        let names: Vec<&str> = t.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "EvaluateOrderRule",
                "NotifySlackRule",
                "PipelineFailedRule",
                "ProcessingErrorRule",
                "StoreResultRule"
            ]
        );
        let sweep = t.sweep.clone().unwrap();
        assert_eq!(sweep.every, SignedDuration::from_mins(2));
        assert_eq!(sweep.target, Function::SweepPending);
        assert_eq!(t.retry.max_attempts, 14);
        assert_eq!(t.rules[0].targets[0].policy.max_retries, 8);
        assert!(t.invoke(Function::EvaluateOrder).on_failure_to_bus);
        assert!(!t.invoke(Function::NotifySlack).on_failure_to_bus);
    }
}
