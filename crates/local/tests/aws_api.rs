//! `energy up` answers the AWS Schemas and Scheduler APIs on its port: driven here by boto3 (in
//! `.venv`, installed by `scripts/test`), as a desk's script would be, against a real
//! `energy up`.

#[path = "common/up.rs"]
mod up;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What boto3 sees: the script's JSON answer.
const SCRIPT: &str = r#"
import json, sys
import boto3, botocore
endpoint, mode = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="eu-west-1",
          aws_access_key_id="any", aws_secret_access_key="any")
def code(f):
    try:
        f()
        return None
    except botocore.exceptions.ClientError as e:
        return [e.response["Error"]["Code"], e.response["Error"].get("Message", "")]
out = {}
if mode == "schemas":
    s = boto3.client("schemas", **kw)
    regs = s.list_registries()["Registries"]
    out["registries"] = [r["RegistryName"] for r in regs]
    reg = regs[0]["RegistryName"]
    out["registry"] = s.describe_registry(RegistryName=reg)["RegistryName"]
    names = [x["SchemaName"] for x in s.list_schemas(RegistryName=reg)["Schemas"]]
    out["schemas"] = names
    out["described"] = {n: s.describe_schema(RegistryName=reg, SchemaName=n)["Content"] for n in names}
    out["exported"] = {n: s.export_schema(RegistryName=reg, SchemaName=n, Type="JSONSchemaDraft4")["Content"] for n in names}
    out["versions"] = [v["SchemaVersion"] for v in s.list_schema_versions(RegistryName=reg, SchemaName=names[0])["SchemaVersions"]]
    out["search"] = [x["SchemaName"] for x in s.search_schemas(RegistryName=reg, Keywords="Cancel")["Schemas"]]
    out["no_registry"] = code(lambda: s.describe_registry(RegistryName="nope"))
    out["no_schema"] = code(lambda: s.describe_schema(RegistryName=reg, SchemaName="nope"))
    out["unknown"] = code(lambda: s.create_registry(RegistryName="mine"))
elif mode == "events":
    ev = boto3.client("events", **kw)
    bus = "energy-dev"
    put = ev.put_events(Entries=[{"Source": "desk.test", "DetailType": "Hello", "Detail": json.dumps({"x": 1}), "EventBusName": bus},
                                 {"Source": "desk.test", "DetailType": "Hello", "EventBusName": bus},
                                 {"Source": "aws.ec2", "DetailType": "Hello", "Detail": "{}", "EventBusName": bus},
                                 {"Source": "desk.test", "DetailType": "Hello", "Detail": "{}"}])
    out["put"] = {"failed": put["FailedEntryCount"], "entries": put["Entries"]}
    out["too_many"] = code(lambda: ev.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": bus}] * 11))
    out["default_bus"] = code(lambda: ev.list_rules())
    ev_json = json.dumps({"id": "1", "source": "energy.orders", "detail-type": "OrderFailed", "account": "1",
                          "time": "2026-01-01T00:00:00Z", "region": "r", "resources": [], "detail": {"zone": "DE-LU"}})
    out["match"] = [ev.test_event_pattern(EventPattern=json.dumps(p), Event=ev_json)["Result"] for p in (
        {"detail-type": ["OrderFailed"]}, {"detail": {"zone": [{"prefix": "FR"}]}},
        {"detail": {"zone": [{"anything-but": ["FR"]}]}})]
    out["bad_pattern"] = code(lambda: ev.test_event_pattern(EventPattern="{\"a\": 1}", Event=ev_json))
    out["rules"] = [r["Name"] for r in ev.list_rules(EventBusName=bus)["Rules"]]
    out["rule"] = ev.describe_rule(Name="StoreResultRule", EventBusName=bus)["EventPattern"]
    out["targets"] = [t["Arn"] for t in ev.list_targets_by_rule(Rule="StoreResultRule", EventBusName=bus)["Targets"]]
    out["no_rule"] = code(lambda: ev.describe_rule(Name="nope", EventBusName=bus))
    out["unknown"] = code(lambda: ev.create_event_bus(Name="mine"))
    out["no_rule_targets"] = code(lambda: ev.put_targets(Rule="nope", EventBusName=bus, Targets=[{"Id": "a", "Arn": "arn:aws:lambda:eu-west-1:1:function:notify-slack"}]))
    out["bad_rule_pattern"] = code(lambda: ev.put_rule(Name="mine", EventBusName=bus, EventPattern=json.dumps({"source": "not-an-array"})))
    out["long_rule_pattern"] = code(lambda: ev.put_rule(Name="mine", EventBusName=bus, EventPattern=json.dumps({"source": ["x" * 5000]})))
    out["bad_rule_name"] = code(lambda: ev.put_rule(Name="has space", EventBusName=bus, EventPattern=json.dumps({"source": ["x"]})))
else:
    c = boto3.client("scheduler", **kw)
    groups = [g["Name"] for g in c.list_schedule_groups()["ScheduleGroups"]]
    out["groups"] = groups
    listed = c.list_schedules(GroupName=groups[0])["Schedules"]
    out["schedules"] = [x["Name"] for x in listed]
    out["got"] = [c.get_schedule(Name=n, GroupName=groups[0]) for n in out["schedules"]]
    for g in out["got"]:
        g.pop("ResponseMetadata", None)
        for k in ("CreationDate", "LastModificationDate"):
            g[k] = str(g[k])
    out["missing"] = code(lambda: c.get_schedule(Name="nope-1", GroupName=groups[0]))
    out["unknown"] = code(lambda: c.delete_schedule(Name="nope-1", GroupName=groups[0]))
print(json.dumps(out))
"#;

fn boto3(endpoint: &str, mode: &str) -> Value {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/setup-venv (the test command does)",
        python.display()
    );
    let out = std::process::Command::new(python)
        .args(["-c", SCRIPT, endpoint, mode])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_reads_the_registry_and_the_pending_schedules_of_energy_up() {
    let dir = up::data_dir("aws-api");
    // 10:40Z, 120×: the order is posted at once, 10 s before the 11:00Z gate; its first check
    // (11:45Z) fires about 32 s after the start.
    let up = up::start(&dir, &["--start", "2026-11-27T10:40:00Z", "--speed", "120"]);
    let endpoint = up.url("");
    let endpoint = endpoint.trim_end_matches('/');

    // Scheduler: nothing pending; then an order, posted well before the gate however slow the
    // machine, whose first check is listed below.
    let before = boto3(endpoint, "scheduler");
    assert_eq!(before["groups"], json!(["energy-dev"]));
    assert_eq!(before["schedules"], json!([]));
    assert_eq!(before["missing"][0], "ResourceNotFoundException");
    assert_eq!(before["unknown"][0], "UnknownOperationException");
    let http = reqwest::Client::new();
    let order = json!([{
        "record_id": "aws-1", "market": "SDAC", "delivery_date": "2026-11-28", "zone": "NL",
        "portfolio": "P", "side": "BUY",
        "periods": [{"mtu_start": "2026-11-28T06:00:00Z", "steps": [{"price": "3000.00", "quantity": "1.0"}]}]
    }]);
    let r = http
        .post(up.url("/orders"))
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());

    // Schemas: the template's registry, every event schema equal to its file.
    let s = boto3(endpoint, "schemas");
    assert_eq!(s["registries"], json!(["energy-dev"]));
    assert_eq!(s["registry"], "energy-dev");
    let names: Vec<String> = serde_json::from_value(s["schemas"].clone()).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(root().join("events-schema"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "json")
                .then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    files.sort();
    let expected: Vec<String> = files.iter().map(|f| format!("energy.orders@{f}")).collect();
    assert_eq!(names, expected);
    for (name, file) in names.iter().zip(&files) {
        let on_disk: Value = serde_json::from_str(
            &std::fs::read_to_string(root().join(format!("events-schema/{file}.json"))).unwrap(),
        )
        .unwrap();
        for how in ["described", "exported"] {
            let served: Value = serde_json::from_str(s[how][name].as_str().unwrap()).unwrap();
            assert_eq!(served, on_disk, "{how} {name}");
        }
    }
    assert_eq!(s["versions"], json!(["1"]));
    // Search finds by name or content; OrderCancelled by its name.
    let found = s["search"].as_array().unwrap();
    assert!(
        found
            .iter()
            .all(|n| names.contains(&n.as_str().unwrap().to_string()))
    );
    assert!(
        s["search"]
            .as_array()
            .unwrap()
            .contains(&json!("energy.orders@OrderCancelled"))
    );
    assert_eq!(s["no_registry"][0], "NotFoundException");
    assert_eq!(s["no_schema"][0], "NotFoundException");
    assert_eq!(s["unknown"][0], "UnknownOperationException");
    assert!(
        s["unknown"][1].as_str().unwrap().contains("read-only"),
        "{}",
        s["unknown"]
    );

    // EventBridge: PutEvents onto the bus (archived, per-entry results and limits), patterns
    // tested as the bus matches them, the template's rules listed, the rest refused by name.
    let e = boto3(endpoint, "events");
    assert_eq!(e["put"]["failed"], 3, "{}", e["put"]);
    let id = e["put"]["entries"][0]["EventId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(e["put"]["entries"][1]["ErrorCode"], "InvalidArgument");
    assert_eq!(
        e["put"]["entries"][2]["ErrorCode"],
        "NotAuthorizedForSourceException"
    );
    // No bus named: the account's default bus, which energy up does not emulate; it says so.
    assert_eq!(
        e["put"]["entries"][3]["ErrorCode"],
        "ResourceNotFoundException"
    );
    assert!(
        e["put"]["entries"][3]["ErrorMessage"]
            .as_str()
            .unwrap()
            .contains("--event-bus-name energy-dev")
    );
    assert_eq!(e["default_bus"][0], "ResourceNotFoundException");
    assert_eq!(e["too_many"][0], "ValidationException");
    assert_eq!(e["match"], json!([true, false, true]));
    assert_eq!(e["bad_pattern"][0], "InvalidEventPatternException");
    let rules: Vec<String> = serde_json::from_value(e["rules"].clone()).unwrap();
    for r in [
        "EvaluateOrderRule",
        "StoreResultRule",
        "NotifySlackRule",
        "ProcessingErrorRule",
    ] {
        assert!(rules.contains(&r.to_string()), "{rules:?}");
    }
    let pattern: Value = serde_json::from_str(e["rule"].as_str().unwrap()).unwrap();
    assert_eq!(pattern["detail-type"], json!(["OrderReady"]));
    assert!(
        e["targets"][0]
            .as_str()
            .unwrap()
            .ends_with(":function:energy-local-store-result")
    );
    assert_eq!(e["no_rule"][0], "ResourceNotFoundException");
    assert_eq!(e["unknown"][0], "UnknownOperationException");
    assert!(
        e["unknown"][1]
            .as_str()
            .unwrap()
            .starts_with("CreateEventBus is not implemented"),
        "{}",
        e["unknown"]
    );
    assert_eq!(e["no_rule_targets"][0], "ResourceNotFoundException");
    assert_eq!(e["bad_rule_pattern"][0], "InvalidEventPatternException");
    assert_eq!(e["long_rule_pattern"][0], "ValidationException");
    assert_eq!(e["bad_rule_name"][0], "ValidationException");
    let archived = up::archive(&dir);
    let put = archived
        .iter()
        .find(|a| a["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not archived"));
    assert_eq!(
        (put["source"].as_str(), put["detail"]["x"].as_i64()),
        (Some("desk.test"), Some(1))
    );

    // Scheduler: the round of the order's first check, gone once it fired.
    let deadline = Instant::now() + Duration::from_secs(60);
    let pending = loop {
        let seen = boto3(endpoint, "scheduler");
        let names = seen["schedules"].as_array().cloned().unwrap_or_default();
        if names.len() == 1
            && names[0]
                .as_str()
                .unwrap()
                .starts_with("checks-20261127T1145")
        {
            break seen;
        }
        assert!(Instant::now() < deadline, "no schedule listed: {seen}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let got = &pending["got"][0];
    let name = got["Name"].as_str().unwrap().to_string();
    assert_eq!(got["GroupName"], "energy-dev");
    assert_eq!(got["ActionAfterCompletion"], "DELETE");
    assert_eq!(got["ScheduleExpressionTimezone"], "UTC");
    let expression = got["ScheduleExpression"].as_str().unwrap();
    assert!(
        expression.starts_with("at(2026-11-27T11:45:") && expression.ends_with("0)"),
        "{expression}"
    );
    // The round's name is its end, as its expression.
    let end = &expression[3..expression.len() - 1];
    assert_eq!(name, format!("checks-{}", end.replace(['-', ':'], "")));
    let input: Value = serde_json::from_str(got["Target"]["Input"].as_str().unwrap()).unwrap();
    assert_eq!(input, json!({"due_by": format!("{end}Z")}));
    assert_eq!(
        got["Target"]["EventBridgeParameters"]["DetailType"],
        "OrderChecksDue"
    );
    // Fired: gone, as ActionAfterCompletion DELETE makes it (check 2's round is the next one).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = boto3(endpoint, "scheduler");
        let names = seen["schedules"].as_array().unwrap().clone();
        if !names.contains(&json!(name)) {
            assert!(
                names
                    .iter()
                    .all(|n| n.as_str().unwrap().starts_with("checks-")),
                "{names:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{name} still listed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}
