//! The EventBridge API of `energy up` (JSON 1.1: `POST /` with `X-Amz-Target: AWSEvents.<Op>`),
//! on its one bus: PutEvents and TestEventPattern; rules and their targets (the template's and
//! the consumers file's read-only, those made here durable in the database); connections and
//! API destinations, so a rule can send to an HTTP endpoint with an API key or basic
//! authorization; the bus; and the archive with its replays. Errors carry the exception names
//! the SDKs raise (`__type`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::db::{EventFilter, wall_ms};
use crate::rules::{
    self, Auth, BusResources, CONNECTION, ConnectionDef, DESTINATION, DestinationDef, MAX_TARGETS,
    RULE, RetrySpec, RuleDef, TargetDef,
};
use crate::topology::{API_ORIGIN, Rule, Target};
use crate::up::aws_api::{ACCOUNT, Api, AwsApi, REGION, epoch};

/// PutEvents' limits: entries per call, and bytes of all entries.
const MAX_ENTRIES: usize = 10;
const MAX_PUT_BYTES: usize = 256 * 1024;
/// The longest event pattern PutRule takes (EventBridge's default quota).
const MAX_PATTERN_CHARS: usize = 4096;
/// Rules the API may make on the bus (EventBridge's quota is 300 per bus).
const MAX_RULES: usize = 300;

/// What an operation answers: a JSON body, or an error response (boxed: it is large).
type Answer = Result<Value, Box<Response>>;

/// An error in the JSON 1.1 shape (`__type`), as the SDKs read it.
fn json_error(code: &'static str, message: impl Into<String>) -> Response {
    let message = message.into();
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"__type": code, "message": message}).to_string(),
    )
        .into_response()
}

fn fail(code: &'static str, message: impl Into<String>) -> Box<Response> {
    Box::new(json_error(code, message))
}

fn json_ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

/// Not an AWS call at `/`: the orders API's answer for a path it does not have.
pub async fn not_found_root() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        json!({"error": "not_found", "message": "no route for /; try POST /orders or GET /orders/{record_id}"}).to_string(),
    )
        .into_response()
}

/// The operations answered, for the error that names one we do not implement.
const OPERATIONS: &str = "PutEvents, TestEventPattern, PutRule, DescribeRule, ListRules, DeleteRule, EnableRule, DisableRule, PutTargets, ListTargetsByRule, RemoveTargets, CreateConnection, DescribeConnection, ListConnections, DeleteConnection, CreateApiDestination, DescribeApiDestination, ListApiDestinations, DeleteApiDestination, ListEventBuses, DescribeEventBus, ListArchives, DescribeArchive, StartReplay, DescribeReplay and ListReplays";

/// `POST /` with `X-Amz-Target: AWSEvents.<Operation>`.
pub async fn events(
    State(api): Api,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) else {
        return not_found_root().await;
    };
    let Some(operation) = target.strip_prefix("AWSEvents.") else {
        return json_error(
            "UnknownOperationException",
            format!(
                "X-Amz-Target {target:?}: energy up answers AWSEvents.* at / (and the orders API at /orders)"
            ),
        );
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return json_error("SerializationException", "the body is not a JSON object"),
    };
    let r = &request;
    let answer = match operation {
        "PutEvents" => api.put_events(r).await,
        "TestEventPattern" => test_event_pattern(r),
        "PutRule" => api.put_rule(r).await,
        "DescribeRule" => api.describe_rule(r).await,
        "ListRules" => api.list_rules(r),
        "DeleteRule" => api.delete_rule(r).await,
        "EnableRule" => api.set_state(r, "ENABLED").await,
        "DisableRule" => api.set_state(r, "DISABLED").await,
        "PutTargets" => api.put_targets(r).await,
        "ListTargetsByRule" => api.list_targets(r).await,
        "RemoveTargets" => api.remove_targets(r).await,
        "CreateConnection" => api.create_connection(r).await,
        "DescribeConnection" => api.describe_connection(r).await,
        "ListConnections" => api.list_connections(r).await,
        "DeleteConnection" => api.delete_connection(r).await,
        "CreateApiDestination" => api.create_destination(r).await,
        "DescribeApiDestination" => api.describe_destination(r).await,
        "ListApiDestinations" => api.list_destinations(r).await,
        "DeleteApiDestination" => api.delete_destination(r).await,
        "ListEventBuses" => Ok(json!({"EventBuses": [api.bus()]})),
        "DescribeEventBus" => api.check_bus(&r["Name"]).map(|()| api.bus()),
        "ListArchives" => api.list_archives(r).await,
        "DescribeArchive" => api.describe_archive(r).await,
        "StartReplay" => api.start_replay(r).await,
        "DescribeReplay" => api.describe_replay(r).await,
        "ListReplays" => api.list_replays().await,
        other => Err(fail(
            "UnknownOperationException",
            format!(
                "{other} is not implemented by energy up: its EventBridge API takes {OPERATIONS}"
            ),
        )),
    };
    match answer {
        Ok(body) => json_ok(body),
        Err(e) => *e,
    }
}

fn test_event_pattern(request: &Value) -> Answer {
    let parse = |field: &str| {
        request[field]
            .as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
    };
    let Some(pattern) = parse("EventPattern") else {
        return Err(fail(
            "InvalidEventPatternException",
            "EventPattern is not a JSON text",
        ));
    };
    let Some(event) = parse("Event") else {
        return Err(fail("ValidationException", "Event is not a JSON text"));
    };
    if let Some(lacks) = crate::cli::lacks_envelope(&event) {
        return Err(fail("InvalidEventPatternException", lacks));
    }
    let pattern = compile(&pattern)?;
    Ok(json!({"Result": pattern.matches(&event)}))
}

fn compile(pattern: &Value) -> Result<energy_patterns::Pattern, Box<Response>> {
    energy_patterns::Pattern::compile(pattern).map_err(|e| {
        fail(
            "InvalidEventPatternException",
            format!("Event pattern is not valid. Reason: {e}"),
        )
    })
}

/// A required string field, or the ValidationException that names it.
fn required<'a>(request: &'a Value, field: &str) -> Result<&'a str, Box<Response>> {
    request[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            fail(
                "ValidationException",
                format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"),
            )
        })
}

fn named(request: &Value, field: &str, what: &str) -> Result<String, Box<Response>> {
    let name = required(request, field)?;
    rules::check_name(what, name).map_err(|e| fail("ValidationException", e))?;
    Ok(name.to_string())
}

fn now_secs() -> i64 {
    Timestamp::now().as_second()
}

impl AwsApi {
    fn arn(&self, resource: &str) -> String {
        format!("arn:aws:events:{REGION}:{ACCOUNT}:{resource}")
    }

    fn bus_name(&self) -> &str {
        &self.shared.base.bus_name
    }

    fn bus(&self) -> Value {
        json!({"Name": self.bus_name(), "Arn": self.bus_arn()})
    }

    /// The bus an operation names: ours (by name or ARN), or none (the default, which locally
    /// is ours too).
    fn check_bus(&self, named: &Value) -> Result<(), Box<Response>> {
        self.bus_problem(named)
            .map_or(Ok(()), |m| Err(fail("ResourceNotFoundException", m)))
    }

    /// Why `named` is not our bus (by name or by ARN in any region and account), if it is not.
    fn bus_problem(&self, named: &Value) -> Option<String> {
        let ours = self.bus_name();
        match named.as_str() {
            Some(n) if n == ours => None,
            Some(n) if rules::Arn::parse(n) == Some(rules::Arn::Bus(ours.to_string())) => None,
            None | Some("default") => Some(format!(
                "energy up emulates one event bus, {ours} (the template's), and not the account's default bus: pass --event-bus-name {ours} (EventBusName)"
            )),
            Some(n) => Some(format!(
                "Event bus {n} does not exist; energy up has {ours}"
            )),
        }
    }

    /// A unique suffix for a new resource's ARN, as EventBridge gives connections and API
    /// destinations.
    fn unique(&self) -> String {
        self.shared.next_id()
    }

    /// Changes what the API made: `change` edits a copy and says what to store; the copy is
    /// stored in one transaction, then events are routed by it. Changes happen one at a time.
    async fn change<T>(
        &self,
        change: impl FnOnce(&mut BusResources) -> Result<(T, Vec<Stored>), Box<Response>>,
    ) -> Result<T, Box<Response>> {
        let mut resources = self.shared.resources.lock().await;
        let mut next = resources.clone();
        let (out, writes) = change(&mut next)?;
        let written = self
            .shared
            .db
            .run(move |db| {
                let rows: Vec<(&str, &str, Option<&Value>)> = writes
                    .iter()
                    .map(|w| (w.kind, w.name.as_str(), w.body.as_ref()))
                    .collect();
                db.write_bus_resources(&rows)
            })
            .await;
        if let Err(e) = written {
            return Err(fail("InternalException", e.to_string()));
        }
        *resources = next;
        self.shared.reroute(&resources);
        Ok(out)
    }

    // ------------------------------------------------------------ events

    /// Puts each entry on the bus as EventBridge would: an envelope stamped with the market
    /// clock (or the entry's `Time`), archived and routed by the rules; per-entry results.
    async fn put_events(&self, request: &Value) -> Answer {
        let Some(entries) = request["Entries"].as_array() else {
            return Err(fail("ValidationException", "Entries is required"));
        };
        if entries.is_empty() || entries.len() > MAX_ENTRIES {
            return Err(fail(
                "ValidationException",
                format!(
                    "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and {MAX_ENTRIES}"
                ),
            ));
        }
        let size: usize = entries
            .iter()
            .map(|e| {
                ["Source", "DetailType", "Detail"]
                    .iter()
                    .map(|k| e[*k].as_str().map_or(0, str::len))
                    .sum::<usize>()
                    + e["Resources"].as_array().map_or(0, |r| {
                        r.iter().map(|x| x.as_str().map_or(0, str::len)).sum()
                    })
            })
            .sum();
        if size > MAX_PUT_BYTES {
            return Err(fail(
                "ValidationException",
                format!(
                    "Total size of the entries in the request is over the limit ({size} bytes > {MAX_PUT_BYTES})"
                ),
            ));
        }
        let mut results = Vec::with_capacity(entries.len());
        let mut failed = 0;
        for entry in entries {
            match self.put_entry(entry).await {
                Ok(id) => results.push(json!({"EventId": id})),
                Err((code, message)) => {
                    failed += 1;
                    results.push(json!({"ErrorCode": code, "ErrorMessage": message}));
                }
            }
        }
        Ok(json!({"FailedEntryCount": failed, "Entries": results}))
    }

    async fn put_entry(&self, entry: &Value) -> Result<String, (&'static str, String)> {
        let field = |k: &str| entry[k].as_str().filter(|s| !s.is_empty());
        let (Some(source), Some(detail_type), Some(detail)) =
            (field("Source"), field("DetailType"), field("Detail"))
        else {
            return Err((
                "InvalidArgument",
                "Parameters Source, DetailType and Detail are required".into(),
            ));
        };
        let detail: Value = match serde_json::from_str(detail) {
            Ok(d @ Value::Object(_)) => d,
            _ => return Err(("MalformedDetail", "Detail is malformed.".into())),
        };
        if source.starts_with("aws.") {
            return Err((
                "NotAuthorizedForSourceException",
                format!(
                    "Not authorized for the source {source}: sources starting with aws. are AWS services'"
                ),
            ));
        }
        if let Some(message) = self.bus_problem(&entry["EventBusName"]) {
            return Err(("ResourceNotFoundException", message));
        }
        // The SDKs send Time as epoch seconds; a text timestamp is taken too.
        let time = match &entry["Time"] {
            Value::Null => energy_core::ports::Clock::now(&self.shared.clock),
            Value::Number(n) => n
                .as_f64()
                .and_then(|s| Timestamp::from_millisecond((s * 1000.0) as i64).ok())
                .ok_or(("InvalidArgument", format!("Time {n} is not a timestamp")))?,
            Value::String(t) => t
                .parse::<Timestamp>()
                .map_err(|e| ("InvalidArgument", format!("Time: {e}")))?,
            other => {
                return Err((
                    "InvalidArgument",
                    format!("Time {other} is not a timestamp"),
                ));
            }
        };
        let id = self.shared.next_id();
        let envelope = json!({
            "version": "0",
            "id": id,
            "detail-type": detail_type,
            "source": source,
            "account": ACCOUNT,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "region": REGION,
            "resources": entry["Resources"].as_array().cloned().unwrap_or_default(),
            "detail": detail,
        });
        self.shared
            .put(envelope)
            .await
            .map_err(|e| ("InternalException", e.to_string()))?;
        Ok(id)
    }

    // ------------------------------------------------------------ rules

    fn rule_arn(&self, name: &str) -> String {
        self.arn(&format!("rule/{}/{name}", self.bus_name()))
    }

    /// A rule on the bus now, or ResourceNotFoundException.
    fn rule(&self, name: &str) -> Result<Rule, Box<Response>> {
        self.shared.topology().rule(name).cloned().ok_or_else(|| {
            fail(
                "ResourceNotFoundException",
                format!(
                    "Rule {name} does not exist on EventBus {}.",
                    self.bus_name()
                ),
            )
        })
    }

    fn rule_view(&self, r: &Rule) -> Value {
        let mut v = json!({
            "Name": r.name,
            "Arn": self.rule_arn(&r.name),
            "EventPattern": r.pattern_json.to_string(),
            "State": if r.enabled { "ENABLED" } else { "DISABLED" },
            "EventBusName": self.bus_name(),
            "Description": r.description,
            "CreatedBy": ACCOUNT,
        });
        if r.origin != API_ORIGIN {
            v["ManagedBy"] = json!(r.origin);
        }
        v
    }

    /// The API's own rule `name` in `resources`: a rule the template or the consumers file owns
    /// is a ManagedRuleException, one that does not exist a ResourceNotFoundException.
    fn own<'a>(
        &self,
        resources: &'a mut BusResources,
        name: &str,
    ) -> Result<&'a mut RuleDef, Box<Response>> {
        if let Some(base) = self.shared.base.rule(name) {
            return Err(managed(base));
        }
        resources.rules.get_mut(name).ok_or_else(|| {
            fail(
                "ResourceNotFoundException",
                format!(
                    "Rule {name} does not exist on EventBus {}.",
                    self.bus_name()
                ),
            )
        })
    }

    async fn put_rule(&self, request: &Value) -> Answer {
        self.check_bus(&request["EventBusName"])?;
        let name = named(request, "Name", "the rule name")?;
        if request.get("ScheduleExpression").is_some() {
            return Err(fail(
                "ValidationException",
                "ScheduleExpression is not supported by energy up: its one schedule rule is the template's sweep; make a rule with an EventPattern",
            ));
        }
        let text = required(request, "EventPattern")?;
        if text.chars().count() > MAX_PATTERN_CHARS {
            return Err(fail(
                "ValidationException",
                format!(
                    "1 validation error detected: Value at 'eventPattern' failed to satisfy constraint: Member must have length less than or equal to {MAX_PATTERN_CHARS}"
                ),
            ));
        }
        let pattern: Value = serde_json::from_str(text).map_err(|e| {
            fail(
                "InvalidEventPatternException",
                format!("Event pattern is not valid. Reason: not JSON: {e}"),
            )
        })?;
        compile(&pattern)?;
        let state = match request["State"].as_str() {
            None | Some("ENABLED" | "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS") => "ENABLED",
            Some("DISABLED") => "DISABLED",
            Some(other) => {
                return Err(fail(
                    "ValidationException",
                    format!("State {other:?} is not ENABLED or DISABLED"),
                ));
            }
        };
        if let Some(base) = self.shared.base.rule(&name) {
            return Err(managed(base));
        }
        let description = request["Description"].as_str().unwrap_or("").to_string();
        if description.chars().count() > 512 {
            return Err(fail(
                "ValidationException",
                "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 512",
            ));
        }
        let arn = self.rule_arn(&name);
        self.change(|r| {
            if !r.rules.contains_key(&name) && r.rules.len() >= MAX_RULES {
                return Err(fail(
                    "LimitExceededException",
                    format!("The bus has {MAX_RULES} rules made through the API already"),
                ));
            }
            let targets = r
                .rules
                .get(&name)
                .map(|old| old.targets.clone())
                .unwrap_or_default();
            let def = RuleDef {
                name: name.clone(),
                event_pattern: pattern,
                state: state.to_string(),
                description,
                targets,
            };
            let body = Stored::document(&def);
            r.rules.insert(name.clone(), def);
            Ok(((), vec![Stored::new(RULE, &name, body)]))
        })
        .await?;
        Ok(json!({"RuleArn": arn}))
    }

    async fn describe_rule(&self, request: &Value) -> Answer {
        self.check_bus(&request["EventBusName"])?;
        let name = required(request, "Name")?;
        Ok(self.rule_view(&self.rule(name)?))
    }

    fn list_rules(&self, request: &Value) -> Answer {
        self.check_bus(&request["EventBusName"])?;
        let prefix = request["NamePrefix"].as_str().unwrap_or("");
        let topology = self.shared.topology();
        let all: Vec<&Rule> = topology
            .rules
            .iter()
            .filter(|r| r.name.starts_with(prefix))
            .collect();
        let (page, next) = paginate(&all, request)?;
        let mut out = json!({"Rules": page.iter().map(|r| self.rule_view(r)).collect::<Vec<_>>()});
        if let Some(next) = next {
            out["NextToken"] = json!(next);
        }
        Ok(out)
    }

    async fn delete_rule(&self, request: &Value) -> Answer {
        self.check_bus(&request["EventBusName"])?;
        let name = required(request, "Name")?.to_string();
        if let Some(base) = self.shared.base.rule(&name) {
            return Err(managed(base));
        }
        // Deleting a rule that is not there succeeds, as EventBridge documents.
        self.change(|r| match r.rules.get(&name) {
            None => Ok(((), Vec::new())),
            Some(def) if !def.targets.is_empty() => Err(fail(
                "ValidationException",
                format!("Rule {name} can't be deleted since it has targets."),
            )),
            Some(_) => {
                r.rules.remove(&name);
                Ok(((), vec![Stored::new(RULE, &name, None)]))
            }
        })
        .await?;
        Ok(json!({}))
    }

    async fn set_state(&self, request: &Value, state: &'static str) -> Answer {
        self.check_bus(&request["EventBusName"])?;
        let name = required(request, "Name")?.to_string();
        self.change(|r| {
            let def = self.own(r, &name)?;
            def.state = state.to_string();
            let body = Stored::document(&*def);
            Ok(((), vec![Stored::new(RULE, &name, body)]))
        })
        .await?;
        Ok(json!({}))
    }

    // ------------------------------------------------------------ targets

    async fn put_targets(&self, request: &Value) -> Answer {
        self.check_bus(&request["EventBusName"])?;
        let name = required(request, "Rule")?.to_string();
        let Some(targets) = request["Targets"].as_array().filter(|t| !t.is_empty()) else {
            return Err(fail(
                "ValidationException",
                "Targets must name 1 to 10 targets",
            ));
        };
        if targets.len() > 10 {
            return Err(fail(
                "ValidationException",
                "Targets must name 1 to 10 targets",
            ));
        }
        let bus = self.bus_name().to_string();
        self.change(|r| {
            let mut def = self.own(r, &name)?.clone();
            let mut failed = Vec::new();
            for t in targets {
                let id = t["Id"].as_str().unwrap_or_default().to_string();
                match target_def(t).and_then(|target| match r.resolve(&target.arn, &bus) {
                    Target::Unavailable { reason, .. } => Err(reason),
                    _ => Ok(target),
                }) {
                    Ok(target) => match def.targets.iter_mut().find(|x| x.id == target.id) {
                        Some(old) => *old = target,
                        None => def.targets.push(target),
                    },
                    Err(message) => failed.push(json!({
                        "TargetId": id, "ErrorCode": "ValidationException", "ErrorMessage": message
                    })),
                }
            }
            if def.targets.len() > MAX_TARGETS {
                return Err(fail(
                    "LimitExceededException",
                    format!(
                        "Rule {name} would have {} targets; a rule has at most {MAX_TARGETS}",
                        def.targets.len()
                    ),
                ));
            }
            let body = Stored::document(&def);
            r.rules.insert(name.clone(), def);
            let out = json!({"FailedEntryCount": failed.len(), "FailedEntries": failed});
            Ok((out, vec![Stored::new(RULE, &name, body)]))
        })
        .await
    }

    async fn list_targets(&self, request: &Value) -> Answer {
        self.check_bus(&request["EventBusName"])?;
        let name = required(request, "Rule")?;
        let rule = self.rule(name)?;
        let resources = self.shared.resources.lock().await;
        let targets: Vec<Value> = match resources.rules.get(name) {
            Some(def) if rule.origin == API_ORIGIN => def
                .targets
                .iter()
                .map(|t| serde_json::to_value(t).unwrap_or_default())
                .collect(),
            _ => rule
                .targets
                .iter()
                .map(|t| {
                    let arn = match &t.target {
                        Target::Function(f) => format!(
                            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:energy-local-{}",
                            f.name()
                        ),
                        other => other.describe(),
                    };
                    json!({
                        "Id": t.id,
                        "Arn": arn,
                        "RetryPolicy": {
                            "MaximumRetryAttempts": t.policy.max_retries,
                            "MaximumEventAgeInSeconds": t.policy.max_age.as_secs(),
                        },
                    })
                })
                .collect(),
        };
        Ok(json!({"Targets": targets}))
    }

    async fn remove_targets(&self, request: &Value) -> Answer {
        self.check_bus(&request["EventBusName"])?;
        let name = required(request, "Rule")?.to_string();
        let ids: Vec<String> = request["Ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        if ids.is_empty() {
            return Err(fail(
                "ValidationException",
                "Ids must name 1 to 100 targets",
            ));
        }
        self.change(|r| {
            let def = self.own(r, &name)?;
            def.targets.retain(|t| !ids.contains(&t.id));
            let body = Stored::document(&*def);
            let out = json!({"FailedEntryCount": 0, "FailedEntries": []});
            Ok((out, vec![Stored::new(RULE, &name, body)]))
        })
        .await
    }

    // ------------------------------------------------------------ connections

    async fn create_connection(&self, request: &Value) -> Answer {
        let name = named(request, "Name", "the connection name")?;
        let p = &request["AuthParameters"];
        let auth = match required(request, "AuthorizationType")? {
            "API_KEY" => {
                let k = &p["ApiKeyAuthParameters"];
                Auth::ApiKey {
                    name: required(k, "ApiKeyName")?.to_string(),
                    value: required(k, "ApiKeyValue")?.to_string(),
                }
            }
            "BASIC" => {
                let b = &p["BasicAuthParameters"];
                Auth::Basic {
                    username: required(b, "Username")?.to_string(),
                    password: required(b, "Password")?.to_string(),
                }
            }
            "OAUTH_CLIENT_CREDENTIALS" => {
                return Err(fail(
                    "ValidationException",
                    "AuthorizationType OAUTH_CLIENT_CREDENTIALS is not supported by energy up; use API_KEY or BASIC",
                ));
            }
            other => {
                return Err(fail(
                    "ValidationException",
                    format!(
                        "AuthorizationType {other:?} is not API_KEY, BASIC or OAUTH_CLIENT_CREDENTIALS"
                    ),
                ));
            }
        };
        let invocation = &p["InvocationHttpParameters"];
        if invocation["BodyParameters"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
        {
            return Err(fail(
                "ValidationException",
                "InvocationHttpParameters.BodyParameters are not supported by energy up: the body is the event",
            ));
        }
        let pairs = |field: &str| -> Vec<(String, String)> {
            invocation[field]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|kv| Some((kv["Key"].as_str()?.into(), kv["Value"].as_str()?.into())))
                .collect()
        };
        let headers: Vec<(String, String)> = pairs("HeaderParameters");
        let mut checked: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Auth::ApiKey { name, value } = &auth {
            checked.push((name, value));
        }
        for (k, v) in checked {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                || http::HeaderValue::from_str(v).is_err()
            {
                return Err(fail(
                    "ValidationException",
                    format!(
                        "header {k:?}: not a valid HTTP header name and value (no spaces or separators in the name, no control characters in the value)"
                    ),
                ));
            }
        }
        let now = now_secs();
        let def = ConnectionDef {
            arn: self.arn(&format!("connection/{name}/{}", self.unique())),
            name: name.clone(),
            description: request["Description"].as_str().unwrap_or("").to_string(),
            auth,
            headers: headers.into_iter().collect(),
            query: pairs("QueryStringParameters"),
            created: now,
        };
        let arn = def.arn.clone();
        self.change(|r| {
            if r.connections.contains_key(&name) {
                return Err(fail(
                    "ResourceAlreadyExistsException",
                    format!("Connection {name} already exists."),
                ));
            }
            let body = Stored::document(&def);
            r.connections.insert(name.clone(), def);
            Ok(((), vec![Stored::new(CONNECTION, &name, body)]))
        })
        .await?;
        Ok(json!({
            "ConnectionArn": arn, "ConnectionState": "AUTHORIZED",
            "CreationTime": now, "LastModifiedTime": now,
        }))
    }

    async fn connection(&self, request: &Value) -> Result<ConnectionDef, Box<Response>> {
        let name = required(request, "Name")?;
        let resources = self.shared.resources.lock().await;
        resources.connections.get(name).cloned().ok_or_else(|| {
            fail(
                "ResourceNotFoundException",
                format!(
                    "Failed to describe the connection(s). Connection '{name}' does not exist."
                ),
            )
        })
    }

    fn connection_view(c: &ConnectionDef) -> Value {
        let kind = match c.auth {
            Auth::ApiKey { .. } => "API_KEY",
            Auth::Basic { .. } => "BASIC",
        };
        json!({
            "ConnectionArn": c.arn, "Name": c.name, "ConnectionState": "AUTHORIZED",
            "AuthorizationType": kind, "CreationTime": c.created,
            "LastModifiedTime": c.created, "LastAuthorizedTime": c.created,
        })
    }

    async fn describe_connection(&self, request: &Value) -> Answer {
        let c = self.connection(request).await?;
        let mut v = Self::connection_view(&c);
        v["Description"] = json!(c.description);
        v["SecretArn"] = json!(format!(
            "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:events!connection/{}",
            c.name
        ));
        // The secrets are not shown, as EventBridge does not show them.
        v["AuthParameters"] = match &c.auth {
            Auth::ApiKey { name, .. } => json!({"ApiKeyAuthParameters": {"ApiKeyName": name}}),
            Auth::Basic { username, .. } => {
                json!({"BasicAuthParameters": {"Username": username}})
            }
        };
        Ok(v)
    }

    async fn list_connections(&self, request: &Value) -> Answer {
        let prefix = request["NamePrefix"].as_str().unwrap_or("");
        let resources = self.shared.resources.lock().await;
        let all: Vec<Value> = resources
            .connections
            .values()
            .filter(|c| c.name.starts_with(prefix))
            .map(Self::connection_view)
            .collect();
        Ok(json!({"Connections": all}))
    }

    async fn delete_connection(&self, request: &Value) -> Answer {
        let c = self.connection(request).await?;
        let name = c.name.clone();
        self.change(|r| {
            if let Some(d) = r.destinations.values().find(|d| d.connection_arn == c.arn) {
                return Err(fail(
                    "ValidationException",
                    format!(
                        "Connection {name} is used by API destination {}; delete it first",
                        d.name
                    ),
                ));
            }
            r.connections.remove(&name);
            Ok(((), vec![Stored::new(CONNECTION, &name, None)]))
        })
        .await?;
        let mut v = Self::connection_view(&c);
        v["ConnectionState"] = json!("DELETING");
        Ok(v)
    }

    // ------------------------------------------------------------ API destinations

    async fn create_destination(&self, request: &Value) -> Answer {
        let name = named(request, "Name", "the API destination name")?;
        let connection_arn = required(request, "ConnectionArn")?.to_string();
        let endpoint = required(request, "InvocationEndpoint")?.to_string();
        if reqwest::Url::parse(&endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .is_none()
        {
            return Err(fail(
                "ValidationException",
                format!("InvocationEndpoint {endpoint:?} is not an http:// or https:// URL"),
            ));
        }
        let method = required(request, "HttpMethod")?.to_string();
        if !["POST", "GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"].contains(&method.as_str())
        {
            return Err(fail(
                "ValidationException",
                format!(
                    "HttpMethod {method:?} is not one of POST, GET, HEAD, OPTIONS, PUT, PATCH, DELETE"
                ),
            ));
        }
        let rate_limit = match request.get("InvocationRateLimitPerSecond") {
            None => 300,
            Some(v) => match v.as_u64().filter(|n| (1..=300).contains(n)) {
                Some(n) => n as u32,
                None => {
                    return Err(fail(
                        "ValidationException",
                        format!("InvocationRateLimitPerSecond {v} is not between 1 and 300"),
                    ));
                }
            },
        };
        let now = now_secs();
        let def = DestinationDef {
            arn: self.arn(&format!("api-destination/{name}/{}", self.unique())),
            name: name.clone(),
            description: request["Description"].as_str().unwrap_or("").to_string(),
            connection_arn,
            endpoint,
            method,
            rate_limit,
            created: now,
        };
        let arn = def.arn.clone();
        self.change(|r| {
            if r.destinations.contains_key(&name) {
                return Err(fail(
                    "ResourceAlreadyExistsException",
                    format!("An api-destination '{name}' already exists."),
                ));
            }
            if !r.connections.values().any(|c| c.arn == def.connection_arn) {
                return Err(fail(
                    "ResourceNotFoundException",
                    format!("Connection '{}' does not exist.", def.connection_arn),
                ));
            }
            let body = Stored::document(&def);
            r.destinations.insert(name.clone(), def);
            Ok(((), vec![Stored::new(DESTINATION, &name, body)]))
        })
        .await?;
        Ok(json!({
            "ApiDestinationArn": arn, "ApiDestinationState": "ACTIVE",
            "CreationTime": now, "LastModifiedTime": now,
        }))
    }

    fn destination_view(d: &DestinationDef) -> Value {
        json!({
            "ApiDestinationArn": d.arn, "Name": d.name, "ApiDestinationState": "ACTIVE",
            "ConnectionArn": d.connection_arn, "InvocationEndpoint": d.endpoint,
            "HttpMethod": d.method, "InvocationRateLimitPerSecond": d.rate_limit,
            "CreationTime": d.created, "LastModifiedTime": d.created,
        })
    }

    async fn destination(&self, request: &Value) -> Result<DestinationDef, Box<Response>> {
        let name = required(request, "Name")?;
        let resources = self.shared.resources.lock().await;
        resources.destinations.get(name).cloned().ok_or_else(|| {
            fail(
                "ResourceNotFoundException",
                format!("An api-destination '{name}' does not exist."),
            )
        })
    }

    async fn describe_destination(&self, request: &Value) -> Answer {
        let d = self.destination(request).await?;
        let mut v = Self::destination_view(&d);
        v["Description"] = json!(d.description);
        Ok(v)
    }

    async fn list_destinations(&self, request: &Value) -> Answer {
        let prefix = request["NamePrefix"].as_str().unwrap_or("");
        let connection = request["ConnectionArn"].as_str();
        let resources = self.shared.resources.lock().await;
        let all: Vec<Value> = resources
            .destinations
            .values()
            .filter(|d| d.name.starts_with(prefix))
            .filter(|d| connection.is_none_or(|c| c == d.connection_arn))
            .map(Self::destination_view)
            .collect();
        Ok(json!({"ApiDestinations": all}))
    }

    async fn delete_destination(&self, request: &Value) -> Answer {
        let d = self.destination(request).await?;
        let name = d.name.clone();
        self.change(|r| {
            r.destinations.remove(&name);
            Ok(((), vec![Stored::new(DESTINATION, &name, None)]))
        })
        .await?;
        Ok(json!({}))
    }

    // ------------------------------------------------------------ archive and replays

    fn archive_arn(&self) -> String {
        self.arn(&format!("archive/{}", self.shared.base.archive.name))
    }

    async fn archive_view(&self) -> Answer {
        // The archive was made with the data dir: its creation time is the first one asked.
        let now = Timestamp::now().as_second().to_string();
        let (count, bytes, created) = self
            .shared
            .db
            .run(move |db| {
                let created = match db.meta("archive_created")? {
                    Some(t) => t,
                    None => {
                        db.set_meta("archive_created", &now)?;
                        now
                    }
                };
                let (count, bytes) = db.archive_size()?;
                Ok::<_, crate::db::DbError>((count, bytes, created))
            })
            .await
            .map_err(|e| fail("InternalException", e.to_string()))?;
        let a = &self.shared.base.archive;
        Ok(json!({
            "ArchiveName": a.name, "ArchiveArn": self.archive_arn(),
            "EventSourceArn": self.bus_arn(), "Description": a.description,
            "State": "ENABLED", "RetentionDays": a.retention_days,
            "SizeBytes": bytes, "EventCount": count,
            "CreationTime": created.parse::<i64>().unwrap_or(0),
        }))
    }

    fn check_archive(&self, name: &Value) -> Result<(), Box<Response>> {
        let ours = &self.shared.base.archive.name;
        match name.as_str() {
            Some(n) if n == ours || n == self.archive_arn() => Ok(()),
            other => Err(fail(
                "ResourceNotFoundException",
                format!(
                    "Archive {} does not exist; energy up has {ours}",
                    other.unwrap_or("(none given)")
                ),
            )),
        }
    }

    async fn list_archives(&self, request: &Value) -> Answer {
        let prefix = request["NamePrefix"].as_str().unwrap_or("");
        let source = request["EventSourceArn"].as_str();
        let a = &self.shared.base.archive;
        if a.name.is_empty()
            || !a.name.starts_with(prefix)
            || source.is_some_and(|s| s != self.bus_arn())
        {
            return Ok(json!({"Archives": []}));
        }
        Ok(json!({"Archives": [self.archive_view().await?]}))
    }

    async fn describe_archive(&self, request: &Value) -> Answer {
        self.check_archive(&request["ArchiveName"])?;
        self.archive_view().await
    }

    /// Replays the archived events whose time is in [EventStartTime, EventEndTime) to the
    /// rules in `Destination.FilterArns` (every rule when none), each marked with
    /// `replay-name`. The replay is queued at once; DescribeReplay then says COMPLETED.
    async fn start_replay(&self, request: &Value) -> Answer {
        let name = named(request, "ReplayName", "the replay name")?;
        self.check_archive(&request["EventSourceArn"])?;
        let time = |field: &str| -> Result<Timestamp, Box<Response>> {
            request[field]
                .as_f64()
                .and_then(|s| Timestamp::from_millisecond((s * 1000.0) as i64).ok())
                .ok_or_else(|| {
                    fail(
                        "ValidationException",
                        format!("{field} is required (a timestamp)"),
                    )
                })
        };
        let (start, end) = (time("EventStartTime")?, time("EventEndTime")?);
        if start >= end {
            return Err(fail(
                "InvalidEventPatternException",
                "EventStartTime must be before EventEndTime",
            ));
        }
        let destination = &request["Destination"];
        self.check_bus(&destination["Arn"])?;
        let topology = self.shared.topology();
        let mut only = Vec::new();
        for arn in destination["FilterArns"].as_array().into_iter().flatten() {
            let arn = arn.as_str().unwrap_or_default();
            let rule = arn.rsplit('/').next().unwrap_or_default();
            if topology.rule(rule).is_none() || self.rule_arn(rule) != arn {
                return Err(fail(
                    "ResourceNotFoundException",
                    format!("Rule {arn} does not exist on EventBus {}.", self.bus_name()),
                ));
            }
            only.push(rule.to_string());
        }
        // One replay at a time, with the API's other changes: a name is taken once.
        let _changes = self.shared.resources.lock().await;
        let key = format!("replay/{name}");
        let lookup = key.clone();
        let taken = self
            .shared
            .db
            .run(move |db| db.meta(&lookup))
            .await
            .map_err(|e| fail("InternalException", e.to_string()))?;
        if taken.is_some() {
            return Err(fail(
                "ResourceAlreadyExistsException",
                format!("Replay {name} already exists."),
            ));
        }
        let format = |t: Timestamp| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let filter = EventFilter {
            since_time: Some(format(start)),
            until_time: Some(format(end)),
            ..EventFilter::default()
        };
        let started = Timestamp::now();
        let replay_name = name.clone();
        let replayed = self
            .shared
            .db
            .run(move |db| {
                let routes = |body: &Value| {
                    topology
                        .deliveries(body)
                        .into_iter()
                        .filter(|r| only.is_empty() || only.contains(&r.rule))
                        .collect()
                };
                db.replay(&filter, &replay_name, &routes, wall_ms())
            })
            .await
            .map_err(|e| fail("InternalException", e.to_string()))?;
        self.shared.deliveries.notify_one();
        let record = json!({
            "ReplayName": name, "ReplayArn": self.arn(&format!("replay/{name}")),
            "Description": request["Description"], "State": "COMPLETED",
            "EventSourceArn": self.archive_arn(), "Destination": destination,
            "EventStartTime": epoch(start), "EventEndTime": epoch(end),
            "EventLastReplayedTime": epoch(end),
            "ReplayStartTime": epoch(started), "ReplayEndTime": epoch(Timestamp::now()),
            "EventsReplayed": replayed.0, "DeliveriesQueued": replayed.1,
        });
        let text = record.to_string();
        self.shared
            .db
            .run(move |db| db.set_meta(&key, &text))
            .await
            .map_err(|e| fail("InternalException", e.to_string()))?;
        Ok(json!({
            "ReplayArn": record["ReplayArn"], "State": "STARTING",
            "ReplayStartTime": record["ReplayStartTime"],
        }))
    }

    async fn replays(&self) -> Result<Vec<Value>, Box<Response>> {
        self.shared
            .db
            .run(|db| db.meta_with_prefix("replay/"))
            .await
            .map_err(|e| fail("InternalException", e.to_string()))
            .map(|rows| {
                rows.into_iter()
                    .filter_map(|(_, v)| serde_json::from_str(&v).ok())
                    .collect()
            })
    }

    async fn describe_replay(&self, request: &Value) -> Answer {
        let name = required(request, "ReplayName")?;
        self.replays()
            .await?
            .into_iter()
            .find(|r| r["ReplayName"] == name)
            .ok_or_else(|| {
                fail(
                    "ResourceNotFoundException",
                    format!("Replay {name} does not exist."),
                )
            })
    }

    async fn list_replays(&self) -> Answer {
        Ok(json!({"Replays": self.replays().await?}))
    }
}

/// The error for a change to a rule the template or the consumers file owns.
fn managed(rule: &Rule) -> Box<Response> {
    fail(
        "ManagedRuleException",
        format!(
            "Rule {} belongs to {}: change it there (energy up reads it at start); only rules made through this API can be changed here",
            rule.name, rule.origin
        ),
    )
}

/// A target of `PutTargets` as stored, or why it cannot be one.
fn target_def(t: &Value) -> Result<TargetDef, String> {
    let id = t["Id"].as_str().unwrap_or_default();
    rules::check_name("the target Id", id)?;
    let arn = t["Arn"]
        .as_str()
        .filter(|a| !a.is_empty())
        .ok_or("Arn is required")?;
    for unsupported in ["Input", "InputPath", "InputTransformer"] {
        if t.get(unsupported).is_some() {
            return Err(format!(
                "{unsupported} is not supported by energy up: targets receive the event as it is"
            ));
        }
    }
    let retry_policy: Option<RetrySpec> = match t.get("RetryPolicy") {
        None => None,
        Some(v) => {
            Some(serde_json::from_value(v.clone()).map_err(|e| format!("RetryPolicy: {e}"))?)
        }
    };
    rules::policy(retry_policy.as_ref())?;
    Ok(TargetDef {
        id: id.to_string(),
        arn: arn.to_string(),
        retry_policy,
        dead_letter_config: t.get("DeadLetterConfig").cloned(),
    })
}

/// `Limit` and `NextToken` over a listing: the page and the next token, if more follow.
fn paginate<'a, T>(
    all: &'a [T],
    request: &Value,
) -> Result<(&'a [T], Option<String>), Box<Response>> {
    let start = match request["NextToken"].as_str() {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= all.len())
            .ok_or_else(|| fail("ValidationException", "NextToken is not one this API gave"))?,
    };
    let limit = match request.get("Limit") {
        None => 100,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| fail("ValidationException", "Limit must be between 1 and 100"))?
            as usize,
    };
    let end = (start + limit).min(all.len());
    let next = (end < all.len()).then(|| end.to_string());
    Ok((&all[start..end], next))
}

/// One resource to store (`body`) or delete (`None`).
struct Stored {
    kind: &'static str,
    name: String,
    body: Option<Value>,
}

impl Stored {
    /// A resource's stored form (these types always serialise).
    fn document<T: serde::Serialize>(value: &T) -> Option<Value> {
        Some(serde_json::to_value(value).unwrap_or(Value::Null))
    }

    fn new(kind: &'static str, name: &str, body: Option<Value>) -> Stored {
        Stored {
            kind,
            name: name.to_string(),
            body,
        }
    }
}
