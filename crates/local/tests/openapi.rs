//! The orders API's OpenAPI document (`events-schema/api/openapi.json`): a valid OpenAPI 3.1
//! document (checked by `openapi-spec-validator`, installed into `.venv` by `scripts/test`),
//! served by `energy up` at `/openapi.json`, sharing its schemas with the request and event
//! schemas, and true of the running API: every answer of every status a desk can provoke
//! validates against the schema the document gives for it.

#[path = "common/up.rs"]
mod up;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use up::{data_dir, start, wait_final};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

fn document() -> Value {
    read("events-schema/api/openapi.json")
}

/// A draft-04 schema as OpenAPI 3.1 (JSON Schema 2020-12) spells it: `definitions` refs point
/// into `components/schemas`, boolean exclusive bounds become numbers.
fn as_openapi(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => {
                        out.insert(
                            k.clone(),
                            json!(r.replace("#/definitions/", "#/components/schemas/")),
                        );
                    }
                    ("exclusiveMinimum", Value::Bool(true)) => {
                        out.insert(k.clone(), m["minimum"].clone());
                    }
                    ("exclusiveMaximum", Value::Bool(true)) => {
                        out.insert(k.clone(), m["maximum"].clone());
                    }
                    ("minimum", _) if m.get("exclusiveMinimum") == Some(&json!(true)) => {}
                    ("maximum", _) if m.get("exclusiveMaximum") == Some(&json!(true)) => {}
                    _ => {
                        out.insert(k.clone(), as_openapi(x));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(as_openapi).collect()),
        other => other.clone(),
    }
}

#[test]
fn the_document_is_valid_openapi() {
    let validator = root().join(".venv/bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run ./scripts/test (it installs it into .venv), or .venv/bin/pip install openapi-spec-validator",
        validator.display()
    );
    let out = std::process::Command::new(&validator)
        .arg(root().join("events-schema/api/openapi.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_document_shares_its_schemas_with_the_request_and_event_schemas() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let request = read("events-schema/api/PostOrdersRequest.json");
    assert_eq!(schemas["Order"], as_openapi(&request["items"]), "Order");
    for key in ["minItems", "maxItems", "type"] {
        assert_eq!(schemas["PostOrdersRequest"][key], request[key], "{key}");
    }
    for file in ["OrderReady", "OrderFailed"] {
        let event = read(&format!("events-schema/{file}.json"));
        for (name, definition) in event["definitions"].as_object().unwrap() {
            assert_eq!(
                schemas[name],
                as_openapi(definition),
                "{name} (from {file}.json)"
            );
        }
    }
}

/// Validates `body` against the schema the document gives for `method path` answering
/// `status`.
fn check(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(
        schema.is_object(),
        "the document has no {status} answer for {method} {path}"
    );
    let mut root = schema.clone();
    root["components"] = doc["components"].clone();
    let validator = jsonschema::draft202012::new(&root).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:?}\n{body:#}"
    );
}

fn order(id: &str, side: &str, price: &str) -> Value {
    json!({
        "record_id": id, "market": "SDAC", "delivery_date": "2026-11-28", "zone": "DE-LU",
        "portfolio": "DESK-O", "side": side,
        "periods": [{"mtu_start": "2026-11-28T06:00:00Z", "steps": [{"price": price, "quantity": "1.0"}]}]
    })
}

#[tokio::test]
async fn every_answer_of_the_running_api_is_what_the_document_says() {
    let dir = data_dir("openapi");
    // Three hours before the gate at 1200×: nine seconds to post, results twelve seconds in.
    let up = start(
        &dir,
        &["--start", "2026-11-27T08:00:00Z", "--speed", "1200"],
    );
    let http = reqwest::Client::new();
    let served: Value = http
        .get(up.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let doc = document();
    assert_eq!(
        served, doc,
        "energy up serves the document in the repository"
    );

    let send = |method: reqwest::Method, path: &str, body: Option<String>, json_type: bool| {
        let mut request = http.request(method, up.url(path));
        if json_type {
            request = request.header("content-type", "application/json");
        }
        if let Some(b) = body {
            request = request.body(b);
        }
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    let batch = json!([
        order("o-acc", "BUY", "3000.00"),
        order("o-rej", "SELL", "3500.00"),
        order("o-can", "BUY", "3000.00")
    ]);
    let put = reqwest::Method::PUT;
    let delete = reqwest::Method::DELETE;
    let one = |id: &str, price: &str| Some(order(id, "BUY", price).to_string());
    let cases = [
        (post.clone(), "/orders", Some(batch.to_string()), true, 202),
        (post.clone(), "/orders", Some(batch.to_string()), true, 202),
        (
            post.clone(),
            "/orders",
            Some(json!([order("o-acc", "BUY", "2999.00")]).to_string()),
            true,
            409,
        ),
        (
            post.clone(),
            "/orders",
            Some(json!([order("o-bad", "BUY", "99999.00")]).to_string()),
            true,
            400,
        ),
        (post.clone(), "/orders", Some("{not json".into()), true, 400),
        (post.clone(), "/orders", Some(batch.to_string()), false, 415),
        (get.clone(), "/orders/o-acc", None, false, 200),
        (get.clone(), "/orders/nobody", None, false, 404),
        (get.clone(), "/orders/a%20b", None, false, 400),
        (put.clone(), "/orders", None, false, 405),
        (post.clone(), "/orders/o-acc", None, false, 405),
        (delete.clone(), "/orders/o-can", None, false, 202),
        (delete.clone(), "/orders/o-can", None, false, 200),
        (delete.clone(), "/orders/nobody", None, false, 404),
        (
            put.clone(),
            "/orders/o-acc",
            one("o-acc", "2999.50"),
            true,
            202,
        ),
        (
            put.clone(),
            "/orders/o-acc",
            one("o-acc", "2999.50"),
            true,
            200,
        ),
        (
            put.clone(),
            "/orders/o-acc",
            one("o-other", "2999.50"),
            true,
            400,
        ),
        (
            put.clone(),
            "/orders/o-acc",
            one("o-acc", "99999.00"),
            true,
            400,
        ),
        (
            put.clone(),
            "/orders/nobody",
            one("nobody", "1.00"),
            true,
            404,
        ),
    ];
    for (method, path, body, json_type, expected) in cases {
        let (status, answer) = send(method.clone(), path, body, json_type).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        let template = if path == "/orders" {
            "/orders"
        } else {
            "/orders/{record_id}"
        };
        let operation = if doc["paths"][template][method.as_str().to_lowercase()].is_object() {
            method.as_str().to_lowercase()
        } else {
            // A method the path does not take: its 405 is documented on the path's reading
            // method (POST /orders, GET /orders/{record_id}).
            if template == "/orders" { "post" } else { "get" }.to_string()
        };
        check(&doc, &operation, template, status, &answer);
    }
    // And once final, with a result and with a failure.
    let ids = [
        "o-acc".to_string(),
        "o-rej".to_string(),
        "o-can".to_string(),
    ];
    let finals = wait_final(&http, &up, &ids, Duration::from_secs(90)).await;
    assert_eq!(finals[0]["state"], "STORED");
    assert_eq!(
        finals[0]["order"]["periods"][0]["steps"][0]["price"], "2999.50",
        "the amended body"
    );
    assert_eq!(finals[0]["result"]["mtus"][0]["accepted_quantity"], "1.0");
    assert_eq!(finals[1]["state"], "NOTIFIED");
    assert_eq!(finals[2]["state"], "CANCELLED");
    for view in &finals {
        check(&doc, "get", "/orders/{record_id}", 200, view);
    }
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}
