//! The AWS APIs `energy up` answers on its port beside `/orders`, so a desk's scripts run
//! unchanged against `--endpoint-url http://127.0.0.1:<port>`: the Schemas API (read-only: the
//! template's registry and schemas) and the Scheduler API (read-only: the evaluator's pending
//! one-time schedules). Both are REST-JSON; errors carry their exception name in
//! `x-amzn-errortype`, as the SDKs expect. Requests are not authenticated: any SigV4 credentials
//! do, which is only safe because `energy up` listens on loopback.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::topology::RegistrySchema;
use crate::up::shared::Shared;

/// Where the local stack says its resources live.
pub const REGION: &str = "local";
pub const ACCOUNT: &str = "000000000000";

pub type Api = State<Arc<AwsApi>>;
type Params = Query<HashMap<String, String>>;

/// What the APIs read: the stack, and when it started (the registry's schemas were "created"
/// then).
pub struct AwsApi {
    pub shared: Arc<Shared>,
    pub started: Timestamp,
}

pub fn router(api: Arc<AwsApi>) -> Router {
    Router::new()
        .route("/v1/registries", schemas_get(list_registries))
        .route(
            "/v1/registries/name/{registry}",
            schemas_get(describe_registry),
        )
        .route(
            "/v1/registries/name/{registry}/schemas",
            schemas_get(list_schemas),
        )
        .route(
            "/v1/registries/name/{registry}/schemas/search",
            schemas_get(search_schemas),
        )
        .route(
            "/v1/registries/name/{registry}/schemas/name/{schema}",
            schemas_get(describe_schema),
        )
        .route(
            "/v1/registries/name/{registry}/schemas/name/{schema}/versions",
            schemas_get(list_schema_versions),
        )
        .route(
            "/v1/registries/name/{registry}/schemas/name/{schema}/export",
            schemas_get(export_schema),
        )
        .route(
            "/v1/registries/{*rest}",
            axum::routing::any(unknown_schemas_operation),
        )
        .route("/schedule-groups", scheduler_get(list_schedule_groups))
        .route("/schedules", scheduler_get(list_schedules))
        .route("/schedules/{name}", scheduler_get(get_schedule))
        .route(
            "/schedule-groups/{*rest}",
            axum::routing::any(unknown_scheduler_operation),
        )
        .route(
            "/",
            axum::routing::post(crate::up::events_api::events)
                .fallback(crate::up::events_api::not_found_root),
        )
        .with_state(api)
}

/// A GET route of the Schemas API; any other method on it is an operation we do not implement.
fn schemas_get<H, T>(handler: H) -> axum::routing::MethodRouter<Arc<AwsApi>>
where
    H: axum::handler::Handler<T, Arc<AwsApi>>,
    T: 'static,
{
    get(handler).fallback(unknown_schemas_operation)
}

/// A GET route of the Scheduler API; any other method on it is an operation we do not
/// implement (CreateSchedule, DeleteSchedule, ...).
fn scheduler_get<H, T>(handler: H) -> axum::routing::MethodRouter<Arc<AwsApi>>
where
    H: axum::handler::Handler<T, Arc<AwsApi>>,
    T: 'static,
{
    get(handler).fallback(unknown_scheduler_operation)
}

/// An error in the REST-JSON shape: the exception name in `x-amzn-errortype` and the body.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"Code": self.code, "Message": self.message, "message": self.message});
        (
            self.status,
            [
                ("x-amzn-errortype", self.code),
                ("content-type", "application/json"),
            ],
            body.to_string(),
        )
            .into_response()
    }
}

fn fail(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    fail(status, code, message).into_response()
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

// ---------------------------------------------------------------- Schemas

fn registry_arn(name: &str) -> String {
    format!("arn:aws:schemas:{REGION}:{ACCOUNT}:registry/{name}")
}

fn schema_arn(registry: &str, schema: &str) -> String {
    format!("arn:aws:schemas:{REGION}:{ACCOUNT}:schema/{registry}/{schema}")
}

/// Every schema of the template is at version 1: the registry is the template's, and the
/// template holds one content per schema.
const VERSION: &str = "1";

impl AwsApi {
    fn registry(&self, name: &str) -> Result<&crate::topology::Registry, ApiError> {
        let registry = &self.shared.base.registry;
        if registry.name != name {
            return Err(fail(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                format!("registry {name} not found: energy up has {}", registry.name),
            ));
        }
        Ok(registry)
    }

    fn schema(&self, registry: &str, name: &str) -> Result<&RegistrySchema, ApiError> {
        let r = self.registry(registry)?;
        r.schemas.iter().find(|s| s.name == name).ok_or_else(|| {
            fail(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                format!("schema {name} not found in registry {registry}"),
            )
        })
    }

    /// The schema at the `schemaVersion` asked (ours, or none asked).
    fn versioned_schema(
        &self,
        registry: &str,
        name: &str,
        q: &HashMap<String, String>,
    ) -> Result<&RegistrySchema, ApiError> {
        let s = self.schema(registry, name)?;
        check_version(q, name)?;
        Ok(s)
    }

    fn created(&self) -> String {
        self.started.to_string()
    }
}

/// A `schemaVersion` other than ours is not found.
fn check_version(q: &HashMap<String, String>, schema: &str) -> Result<(), ApiError> {
    match q.get("schemaVersion") {
        Some(v) if v != VERSION => Err(fail(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            format!("schema {schema} has no version {v} (only {VERSION})"),
        )),
        _ => Ok(()),
    }
}

async fn list_registries(State(api): Api, Query(q): Params) -> Response {
    let r = &api.shared.base.registry;
    let prefix = q
        .get("registryNamePrefix")
        .map(String::as_str)
        .unwrap_or("");
    let registries: Vec<Value> = if r.name.starts_with(prefix) {
        vec![json!({"RegistryArn": registry_arn(&r.name), "RegistryName": r.name, "Tags": {}})]
    } else {
        Vec::new()
    };
    ok(json!({"Registries": registries}))
}

async fn describe_registry(State(api): Api, Path(name): Path<String>) -> Response {
    match api.registry(&name) {
        Ok(r) => ok(json!({
            "Description": r.description,
            "RegistryArn": registry_arn(&r.name),
            "RegistryName": r.name,
            "Tags": {},
        })),
        Err(e) => e.into_response(),
    }
}

async fn list_schemas(State(api): Api, Path(registry): Path<String>, Query(q): Params) -> Response {
    let r = match api.registry(&registry) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let prefix = q.get("schemaNamePrefix").map(String::as_str).unwrap_or("");
    let schemas: Vec<Value> = r
        .schemas
        .iter()
        .filter(|s| s.name.starts_with(prefix))
        .map(|s| {
            json!({
                "LastModified": api.created(),
                "SchemaArn": schema_arn(&registry, &s.name),
                "SchemaName": s.name,
                "Tags": {},
                "VersionCount": 1,
            })
        })
        .collect();
    ok(json!({"Schemas": schemas}))
}

async fn search_schemas(
    State(api): Api,
    Path(registry): Path<String>,
    Query(q): Params,
) -> Response {
    let r = match api.registry(&registry) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some(keywords) = q.get("keywords").filter(|k| !k.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            "keywords is required",
        );
    };
    let keywords = keywords.to_lowercase();
    let schemas: Vec<Value> = r
        .schemas
        .iter()
        .filter(|s| {
            s.name.to_lowercase().contains(&keywords)
                || s.content.to_lowercase().contains(&keywords)
        })
        .map(|s| {
            json!({
                "RegistryName": registry,
                "SchemaArn": schema_arn(&registry, &s.name),
                "SchemaName": s.name,
                "SchemaVersions": [{"CreatedDate": api.created(), "SchemaVersion": VERSION, "Type": s.kind}],
            })
        })
        .collect();
    ok(json!({"Schemas": schemas}))
}

async fn describe_schema(
    State(api): Api,
    Path((registry, name)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    let s = match api.versioned_schema(&registry, &name, &q) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    ok(json!({
        "Content": s.content,
        "Description": s.description,
        "LastModified": api.created(),
        "SchemaArn": schema_arn(&registry, &s.name),
        "SchemaName": s.name,
        "SchemaVersion": VERSION,
        "Tags": {},
        "Type": s.kind,
        "VersionCreatedDate": api.created(),
    }))
}

async fn list_schema_versions(
    State(api): Api,
    Path((registry, name)): Path<(String, String)>,
) -> Response {
    match api.schema(&registry, &name) {
        Ok(s) => ok(json!({"SchemaVersions": [{
            "SchemaArn": schema_arn(&registry, &s.name),
            "SchemaName": s.name,
            "SchemaVersion": VERSION,
            "Type": s.kind,
        }]})),
        Err(e) => e.into_response(),
    }
}

async fn export_schema(
    State(api): Api,
    Path((registry, name)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    let s = match api.versioned_schema(&registry, &name, &q) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    match q.get("type").map(String::as_str) {
        Some(t) if t == s.kind => ok(json!({
            "Content": s.content,
            "SchemaArn": schema_arn(&registry, &s.name),
            "SchemaName": s.name,
            "SchemaVersion": VERSION,
            "Type": s.kind,
        })),
        other => error(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            format!(
                "type {}: the schemas are {}, exported as they are",
                other.unwrap_or("(none)"),
                s.kind
            ),
        ),
    }
}

async fn unknown_schemas_operation(method: http::Method, uri: http::Uri) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "UnknownOperationException",
        format!(
            "{method} {}: not an operation energy up implements. Its Schemas API is read-only (the registry is the template's): ListRegistries, DescribeRegistry, ListSchemas, DescribeSchema, ListSchemaVersions, ExportSchema, SearchSchemas",
            uri.path()
        ),
    )
}

// ---------------------------------------------------------------- Scheduler

fn group_arn(group: &str) -> String {
    format!("arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{group}")
}

pub fn epoch(t: Timestamp) -> Value {
    json!(t.as_millisecond() as f64 / 1000.0)
}

impl AwsApi {
    fn group(&self) -> &str {
        &self.shared.base.schedule_group
    }

    pub fn bus_arn(&self) -> String {
        format!(
            "arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{}",
            self.shared.base.bus_name
        )
    }

    /// A schedule as GetSchedule answers it.
    fn schedule(&self, name: &str, at_ms: i64, event: &str) -> Value {
        let at = Timestamp::from_millisecond(at_ms).unwrap_or(self.started);
        let detail_type = serde_json::from_str(event)
            .ok()
            .and_then(|d| crate::up::scheduler::stored_event(&d).ok())
            .map_or("OrderEvaluationDue", |e| e.detail_type());
        json!({
            "ActionAfterCompletion": "DELETE",
            "Arn": format!("arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{}/{name}", self.group()),
            "CreationDate": epoch(self.started),
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "GroupName": self.group(),
            "LastModificationDate": epoch(self.started),
            "Name": name,
            "ScheduleExpression": energy_core::retry::at_expression(at),
            "ScheduleExpressionTimezone": "UTC",
            "State": "ENABLED",
            "Target": {
                "Arn": self.bus_arn(),
                "RoleArn": format!("arn:aws:iam::{ACCOUNT}:role/energy-local-scheduler"),
                "Input": event,
                "EventBridgeParameters": {"DetailType": detail_type, "Source": "energy.orders"},
            },
        })
    }
}

async fn list_schedule_groups(State(api): Api, Query(q): Params) -> Response {
    let group = api.group();
    let prefix = q.get("NamePrefix").map(String::as_str).unwrap_or("");
    let groups: Vec<Value> = if group.starts_with(prefix) {
        vec![json!({
            "Arn": group_arn(group),
            "CreationDate": epoch(api.started),
            "LastModificationDate": epoch(api.started),
            "Name": group,
            "State": "ACTIVE",
        })]
    } else {
        Vec::new()
    };
    ok(json!({"ScheduleGroups": groups}))
}

async fn list_schedules(State(api): Api, Query(q): Params) -> Response {
    if q.get("ScheduleGroup").is_some_and(|g| g != api.group())
        || q.get("State").is_some_and(|s| s != "ENABLED")
    {
        return ok(json!({"Schedules": []}));
    }
    let limit = match q.get("MaxResults").map(|m| m.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "MaxResults must be 1 to 100",
            );
        }
    };
    let prefix = q.get("NamePrefix").cloned().unwrap_or_default();
    let after = q.get("NextToken").cloned();
    let db = api.shared.db.clone();
    let rows = match db
        .run(move |db| db.list_schedules(&prefix, after.as_deref(), limit + 1))
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                e.to_string(),
            );
        }
    };
    let more = rows.len() > limit;
    let page = &rows[..rows.len().min(limit)];
    let schedules: Vec<Value> = page
        .iter()
        .map(|(name, at, event)| {
            let full = api.schedule(name, *at, event);
            json!({
                "Arn": full["Arn"],
                "CreationDate": full["CreationDate"],
                "GroupName": full["GroupName"],
                "LastModificationDate": full["LastModificationDate"],
                "Name": name,
                "State": "ENABLED",
                "Target": {"Arn": full["Target"]["Arn"]},
            })
        })
        .collect();
    let mut body = json!({"Schedules": schedules});
    if more && let Some((last, _, _)) = page.last() {
        body["NextToken"] = json!(last);
    }
    ok(body)
}

async fn get_schedule(State(api): Api, Path(name): Path<String>, Query(q): Params) -> Response {
    let group = q
        .get("groupName")
        .cloned()
        .unwrap_or_else(|| "default".into());
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("Schedule {name} does not exist in group {group}."),
        )
    };
    if group != api.group() {
        return not_found();
    }
    let db = api.shared.db.clone();
    let wanted = name.clone();
    match db.run(move |db| db.get_schedule(&wanted)).await {
        Ok(Some((at, event))) => ok(api.schedule(&name, at, &event)),
        Ok(None) => not_found(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            e.to_string(),
        ),
    }
}

async fn unknown_scheduler_operation(method: http::Method, uri: http::Uri) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "UnknownOperationException",
        format!(
            "{method} {}: not an operation energy up implements. Its Scheduler API is read-only (the schedules are the evaluator's): ListScheduleGroups, ListSchedules, GetSchedule",
            uri.path()
        ),
    )
}
