//! The rules, connections and API destinations created through `energy up`'s EventBridge API,
//! as they are stored (one JSON document each in the database, so they survive `kill -9`) and
//! as they become rules on the bus. The consumers file makes its rules with the same
//! [`rule`] and [`policy`], so a rule reads, validates and delivers the same whichever way it
//! was made.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::{Db, DbResult};
use crate::function::Function;
use crate::topology::{API_ORIGIN, DeliveryPolicy, Rule, RuleTarget, Target, Topology};
use energy_patterns::Pattern;

/// Most targets a rule may have (EventBridge's limit).
pub const MAX_TARGETS: usize = 5;

/// A rule's `RetryPolicy`, as the API and the consumers file write it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct RetrySpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_retry_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_event_age_in_seconds: Option<i64>,
}

/// The delivery policy of a `RetryPolicy` (EventBridge's defaults where it is silent), or why
/// EventBridge would refuse it.
pub fn policy(spec: Option<&RetrySpec>) -> Result<DeliveryPolicy, String> {
    let d = DeliveryPolicy::default();
    let Some(spec) = spec else { return Ok(d) };
    if let Some(n) = spec.maximum_retry_attempts
        && n > 185
    {
        return Err(format!(
            "RetryPolicy.MaximumRetryAttempts {n} is not between 0 and 185"
        ));
    }
    if let Some(s) = spec.maximum_event_age_in_seconds
        && !(60..=86_400).contains(&s)
    {
        return Err(format!(
            "RetryPolicy.MaximumEventAgeInSeconds {s} is not between 60 and 86400"
        ));
    }
    Ok(DeliveryPolicy {
        max_retries: spec.maximum_retry_attempts.unwrap_or(d.max_retries),
        max_age: spec
            .maximum_event_age_in_seconds
            .map_or(d.max_age, SignedDuration::from_secs),
    })
}

/// Whether `name` is a name EventBridge takes for a rule, a target id, a connection or an API
/// destination: 1 to 64 of letters, digits, `.`, `-` and `_`.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} must be 1 to 64 letters, digits, '.', '-' or '_'"
        ))
    }
}

/// A rule on the bus from its parts, its pattern compiled (or the reason it does not compile).
pub fn rule(
    name: &str,
    pattern_json: &Value,
    enabled: bool,
    description: String,
    targets: Vec<RuleTarget>,
    origin: &str,
) -> Result<Rule, String> {
    check_name("the rule name", name)?;
    let pattern = Pattern::compile(pattern_json).map_err(|e| e.to_string())?;
    Ok(Rule {
        name: name.to_string(),
        pattern_json: pattern_json.clone(),
        pattern,
        targets,
        enabled,
        description,
        origin: origin.to_string(),
    })
}

/// A rule made through the API, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuleDef {
    pub name: String,
    pub event_pattern: Value,
    pub state: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub targets: Vec<TargetDef>,
}

impl RuleDef {
    pub fn enabled(&self) -> bool {
        self.state != "DISABLED"
    }
}

/// One target of a rule made through the API, as `PutTargets` took it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetDef {
    pub id: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetrySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_config: Option<Value>,
}

/// How a connection authorizes its API destinations' requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Auth {
    ApiKey { name: String, value: String },
    Basic { username: String, password: String },
}

/// A connection (`CreateConnection`), as stored. Its secrets stay in the local database, which
/// only this user reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionDef {
    pub name: String,
    pub arn: String,
    pub description: String,
    pub auth: Auth,
    /// `InvocationHttpParameters`: headers and query parameters every request carries.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub query: Vec<(String, String)>,
    /// Epoch seconds.
    pub created: i64,
}

/// An API destination (`CreateApiDestination`), as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationDef {
    pub name: String,
    pub arn: String,
    pub description: String,
    pub connection_arn: String,
    pub endpoint: String,
    pub method: String,
    pub rate_limit: u32,
    pub created: i64,
}

/// What the API created: rules, connections and API destinations by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BusResources {
    pub rules: BTreeMap<String, RuleDef>,
    pub connections: BTreeMap<String, ConnectionDef>,
    pub destinations: BTreeMap<String, DestinationDef>,
}

/// The kinds of stored resources, as the database names them.
pub const RULE: &str = "rule";
pub const CONNECTION: &str = "connection";
pub const DESTINATION: &str = "api-destination";

impl BusResources {
    /// Everything stored. A row that no longer reads is skipped, loudly: it is still in the
    /// database for a later version to read.
    pub fn load(db: &Db) -> DbResult<BusResources> {
        let mut out = BusResources::default();
        for (kind, name, body) in db.bus_resources()? {
            let read = match kind.as_str() {
                RULE => serde_json::from_value(body).map(|r| {
                    out.rules.insert(name.clone(), r);
                }),
                CONNECTION => serde_json::from_value(body).map(|c| {
                    out.connections.insert(name.clone(), c);
                }),
                DESTINATION => serde_json::from_value(body).map(|d| {
                    out.destinations.insert(name.clone(), d);
                }),
                _ => Ok(()),
            };
            if let Err(e) = read {
                tracing::error!(%kind, %name, error = %e, "a stored {kind} does not read; it is left out");
            }
        }
        Ok(out)
    }

    /// `base` with the API's rules added, each target resolved to where it delivers.
    pub fn apply_to(&self, base: &Topology) -> Topology {
        let mut topology = base.clone();
        for def in self.rules.values() {
            if let Some(owner) = base.rule(&def.name) {
                tracing::error!(
                    rule = %def.name,
                    "a rule made through the API has the name of one in {}; the API's is left out until one of them is renamed",
                    owner.origin
                );
                continue;
            }
            let targets = def
                .targets
                .iter()
                .map(|t| RuleTarget {
                    id: t.id.clone(),
                    target: self.resolve(&t.arn, &base.bus_name),
                    policy: policy(t.retry_policy.as_ref()).unwrap_or_default(),
                })
                .collect();
            match rule(
                &def.name,
                &def.event_pattern,
                def.enabled(),
                def.description.clone(),
                targets,
                API_ORIGIN,
            ) {
                Ok(r) => topology.rules.push(r),
                Err(e) => {
                    tracing::error!(rule = %def.name, error = %e, "a stored rule no longer compiles; it is left out")
                }
            }
        }
        topology.rules.sort_by(|a, b| a.name.cmp(&b.name));
        topology
    }

    /// Where a target's ARN delivers: one of our functions, an API destination (through its
    /// connection) or the bus. Anything else is [`Target::Unavailable`] with the reason.
    pub fn resolve(&self, arn: &str, bus_name: &str) -> Target {
        let unavailable = |reason: String| Target::Unavailable {
            arn: arn.to_string(),
            reason,
        };
        match Arn::parse(arn) {
            Some(Arn::Function(name)) => match function_of(&name) {
                Some(f) => Target::Function(f),
                None if name.ends_with("submit-order") => unavailable(
                    "submit-order is invoked by the HTTP API; it takes no EventBridge events"
                        .into(),
                ),
                None => unavailable(format!("energy up has no function {name}")),
            },
            Some(Arn::Bus(name)) if name == bus_name => Target::Bus,
            Some(Arn::Bus(name)) => unavailable(format!(
                "energy up has one bus, {bus_name}; there is no bus {name}"
            )),
            Some(Arn::ApiDestination(name)) => {
                let Some(d) = self.destinations.get(&name) else {
                    return unavailable(format!("API destination {name} does not exist"));
                };
                let Some(c) = self
                    .connections
                    .values()
                    .find(|c| c.arn == d.connection_arn)
                else {
                    return unavailable(format!(
                        "the connection of API destination {name} ({}) does not exist",
                        d.connection_arn
                    ));
                };
                let mut headers = c.headers.clone();
                let mut basic = None;
                match &c.auth {
                    Auth::ApiKey { name, value } => {
                        headers.insert(name.clone(), value.clone());
                    }
                    Auth::Basic { username, password } => {
                        basic = Some((username.clone(), password.clone()));
                    }
                }
                Target::Http {
                    url: d.endpoint.clone(),
                    method: d.method.clone(),
                    headers,
                    query: c.query.clone(),
                    basic,
                }
            }
            None => unavailable(format!(
                "energy up delivers to its functions, API destinations and its bus; {arn} is none of these"
            )),
        }
    }
}

/// The kinds of ARN a target may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arn {
    Function(String),
    Bus(String),
    ApiDestination(String),
}

impl Arn {
    /// `arn:aws:lambda:R:A:function:NAME[:QUALIFIER]`, `arn:aws:events:R:A:event-bus/NAME`,
    /// `arn:aws:events:R:A:api-destination/NAME[/ID]`; any region and account.
    pub fn parse(arn: &str) -> Option<Arn> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, _partition, service, _region, _account, resource] = parts[..] else {
            return None;
        };
        if prefix != "arn" {
            return None;
        }
        match service {
            "lambda" => {
                let name = resource.strip_prefix("function:")?;
                let name = name.split(':').next()?;
                Some(Arn::Function(name.to_string()))
            }
            "events" => {
                if let Some(name) = resource.strip_prefix("event-bus/") {
                    return Some(Arn::Bus(name.to_string()));
                }
                let rest = resource.strip_prefix("api-destination/")?;
                Some(Arn::ApiDestination(
                    rest.split('/').next().unwrap_or_default().to_string(),
                ))
            }
            _ => None,
        }
    }
}

/// The function a Lambda function name means: the binary's name, or a name ending in
/// `-<binary>` as the template names them (`energy-dev-evaluate-order`).
pub fn function_of(name: &str) -> Option<Function> {
    Function::ALL.into_iter().find(|f| {
        name == f.name()
            || name
                .strip_suffix(f.name())
                .is_some_and(|prefix| prefix.ends_with('-'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn target_arns_resolve_to_functions_destinations_and_the_bus() {
        let mut r = BusResources::default();
        r.connections.insert(
            "c".into(),
            ConnectionDef {
                name: "c".into(),
                arn: "arn:aws:events:local:0:connection/c/1".into(),
                description: String::new(),
                auth: Auth::ApiKey {
                    name: "x-api-key".into(),
                    value: "k".into(),
                },
                headers: BTreeMap::new(),
                query: Vec::new(),
                created: 0,
            },
        );
        r.destinations.insert(
            "d".into(),
            DestinationDef {
                name: "d".into(),
                arn: "arn:aws:events:local:0:api-destination/d/2".into(),
                description: String::new(),
                connection_arn: "arn:aws:events:local:0:connection/c/1".into(),
                endpoint: "http://127.0.0.1:9/e".into(),
                method: "PUT".into(),
                rate_limit: 300,
                created: 0,
            },
        );
        let t = |arn: &str| r.resolve(arn, "energy");
        assert_eq!(
            t("arn:aws:lambda:eu-west-1:1:function:energy-dev-store-result"),
            Target::Function(Function::StoreResult)
        );
        assert_eq!(
            t("arn:aws:lambda:local:0:function:notify-slack:live"),
            Target::Function(Function::NotifySlack)
        );
        assert!(matches!(
            t("arn:aws:lambda:local:0:function:xnotify-slack"),
            Target::Unavailable { .. }
        ));
        assert_eq!(t("arn:aws:events:local:0:event-bus/energy"), Target::Bus);
        match t("arn:aws:events:local:0:api-destination/d/2") {
            Target::Http {
                url,
                method,
                headers,
                ..
            } => {
                assert_eq!(
                    (url.as_str(), method.as_str()),
                    ("http://127.0.0.1:9/e", "PUT")
                );
                assert_eq!(headers["x-api-key"], "k");
            }
            other => panic!("{other:?}"),
        }
        match t("arn:aws:sqs:local:0:q") {
            Target::Unavailable { reason, .. } => assert!(reason.contains("none of these")),
            other => panic!("{other:?}"),
        }
        match t("arn:aws:lambda:local:0:function:energy-dev-submit-order") {
            Target::Unavailable { reason, .. } => assert!(reason.contains("HTTP API")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stored_rule_named_like_a_template_rule_is_left_out_and_the_others_route() {
        let base = Topology::embedded().unwrap();
        let mut r = BusResources::default();
        for (name, source) in [("StoreResultRule", "x"), ("Mine", "desk")] {
            r.rules.insert(
                name.into(),
                RuleDef {
                    name: name.into(),
                    event_pattern: json!({"source": [source]}),
                    state: "ENABLED".into(),
                    description: String::new(),
                    targets: vec![TargetDef {
                        id: "t".into(),
                        arn: "arn:aws:lambda:local:0:function:notify-slack".into(),
                        retry_policy: None,
                        dead_letter_config: None,
                    }],
                },
            );
        }
        let t = r.apply_to(&base);
        let named = |n: &str| t.rules.iter().filter(|r| r.name == n).count();
        assert_eq!((named("StoreResultRule"), named("Mine")), (1, 1));
        assert_eq!(t.rule("StoreResultRule").unwrap().origin, "template.yaml");
        let event = json!({"source": "desk", "detail-type": "x", "detail": {}});
        let routes = t.deliveries(&event);
        assert_eq!(routes.len(), 1);
        assert_eq!(
            (routes[0].rule.as_str(), routes[0].target.as_str()),
            ("Mine", "t")
        );
        let d = t.delivery("Mine", "t").unwrap();
        assert_eq!(d.target, Target::Function(Function::NotifySlack));
        assert!(t.delivery("Mine", "other").is_none());
    }

    #[test]
    fn retry_policies_and_names_are_checked_as_eventbridge_checks_them() {
        let p = |n, s| {
            policy(Some(&RetrySpec {
                maximum_retry_attempts: n,
                maximum_event_age_in_seconds: s,
            }))
        };
        assert_eq!(p(Some(0), Some(60)).unwrap().max_retries, 0);
        assert!(
            p(Some(186), None)
                .unwrap_err()
                .contains("MaximumRetryAttempts")
        );
        assert!(
            p(None, Some(59))
                .unwrap_err()
                .contains("MaximumEventAgeInSeconds")
        );
        assert!(p(None, Some(86_401)).is_err());
        assert!(check_name("rule", "a.b-c_9").is_ok());
        assert!(check_name("rule", "").is_err());
        assert!(check_name("rule", "a b").is_err());
        assert!(check_name("rule", &"x".repeat(65)).is_err());
        let r = rule(
            "R",
            &json!({"source": ["x"]}),
            true,
            String::new(),
            vec![],
            "t",
        );
        assert!(r.is_ok());
        let bad = rule(
            "R",
            &json!({"source": "x"}),
            true,
            String::new(),
            vec![],
            "t",
        );
        assert!(bad.unwrap_err().contains("array"));
    }
}
