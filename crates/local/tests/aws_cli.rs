//! The AWS CLI (from PyPI, in `.venv`, installed by `scripts/test`) against a real `energy up`,
//! as a desk's script would run it: a consumer subscribed with `aws events put-rule` and
//! `put-targets` on API destinations gets exactly what its pattern selects, with its API key or
//! basic authorization, after retries, or as a dead letter; the rules survive `kill -9`; a
//! replay reaches only the rules it names; and `aws events test-event-pattern` answers as
//! `energy events test-pattern` on the pattern conformance suite.

#[path = "common/up.rs"]
mod up;

#[path = "../../patterns/tests/cases/mod.rs"]
mod cases;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A config file that keeps the CLI from fetching `http://` parameter values (AWS CLI v1 reads
/// a parameter that is a URL as the URL's content unless `cli_follow_urlparam` is false).
fn aws_config(dir: &Path) -> PathBuf {
    let path = dir.join("aws-config");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&path, "[default]\ncli_follow_urlparam = false\n").unwrap();
    path
}

/// The bus every `aws events` call names, as a script names it against the deployed stack.
const BUS: &str = "energy-dev";

/// The `aws events` operations that take `--event-bus-name`.
const ON_BUS: [&str; 9] = [
    "put-rule",
    "describe-rule",
    "list-rules",
    "delete-rule",
    "enable-rule",
    "disable-rule",
    "put-targets",
    "list-targets-by-rule",
    "remove-targets",
];

/// `aws <args> --endpoint-url ENDPOINT --output json` (with `--event-bus-name energy-dev` for
/// the rule and target operations): its JSON answer, or its error text.
fn run_aws(dir: &Path, endpoint: &str, args: &[&str]) -> Result<Value, String> {
    let cli = root().join(".venv/bin/aws");
    assert!(
        cli.exists(),
        "{} missing: run scripts/setup-venv (the test command does), which installs the AWS CLI from PyPI",
        cli.display()
    );
    let on_bus =
        args.first() == Some(&"events") && args.get(1).is_some_and(|op| ON_BUS.contains(op));
    let out = std::process::Command::new(cli)
        .args(args)
        .args(if on_bus {
            vec!["--event-bus-name", BUS]
        } else {
            vec![]
        })
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .env("AWS_CONFIG_FILE", aws_config(dir))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-credentials"))
        .env("AWS_ACCESS_KEY_ID", "any")
        .env("AWS_SECRET_ACCESS_KEY", "any")
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .output()
        .expect("run the AWS CLI");
    if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
        })
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn ok(r: Result<Value, String>) -> Value {
    r.unwrap_or_else(|e| panic!("the AWS CLI failed: {e}"))
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    method: Method,
    headers: HeaderMap,
    body: Value,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// A loopback HTTP endpoint for API destinations: `/ok/*` answers 200, `/flaky` 500 the first
/// time it sees an event and 200 after, `/down` always 500. Every request is logged.
async fn receiver() -> (String, Log) {
    async fn take(
        State(log): State<Log>,
        UrlPath(path): UrlPath<String>,
        method: Method,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> StatusCode {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut log = log.lock().unwrap();
        let seen_before = log
            .iter()
            .any(|r| r.path == path && r.body["id"] == body["id"]);
        log.push(Received {
            path: path.clone(),
            method,
            headers,
            body,
        });
        match path.as_str() {
            "down" => StatusCode::INTERNAL_SERVER_ERROR,
            "flaky" if !seen_before => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::OK,
        }
    }
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::any(take))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), log)
}

fn got(log: &Log, path: &str) -> Vec<Received> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == path)
        .cloned()
        .collect()
}

async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn dead_letters(dir: &Path) -> Vec<Value> {
    let (code, out, err) = up::cli(dir, &["dlq", "list", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn entries(events: &[(&str, Value)]) -> String {
    let entries: Vec<Value> = events
        .iter()
        .map(|(source, detail)| {
            json!({"Source": source, "DetailType": "DeskEvent", "Detail": detail.to_string(), "EventBusName": BUS})
        })
        .collect();
    serde_json::to_string(&entries).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_subscribed_with_the_aws_cli_gets_what_its_pattern_selects_and_survives_kill_9()
{
    let dir = up::data_dir("aws-cli");
    let (receiver, log) = receiver().await;
    let up = up::start(&dir, &["--start", "2026-11-27T10:40:00Z"]);
    let endpoint = up.url("");
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let aws = |args: &[&str]| run_aws(&dir, &endpoint, args);

    // Two connections, four API destinations.
    let key = ok(aws(&[
        "events",
        "create-connection",
        "--name",
        "desk-key",
        "--authorization-type",
        "API_KEY",
        "--auth-parameters",
        r#"{"ApiKeyAuthParameters":{"ApiKeyName":"x-api-key","ApiKeyValue":"s3cret"}}"#,
    ]));
    assert_eq!(key["ConnectionState"], "AUTHORIZED");
    let basic = ok(aws(&[
        "events",
        "create-connection",
        "--name",
        "desk-basic",
        "--authorization-type",
        "BASIC",
        "--auth-parameters",
        r#"{"BasicAuthParameters":{"Username":"desk","Password":"pa:ss"}}"#,
    ]));
    let described = ok(aws(&[
        "events",
        "describe-connection",
        "--name",
        "desk-key",
    ]));
    assert_eq!(
        described["AuthParameters"],
        json!({"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key"}}),
        "the key's value is not shown"
    );
    let mut destination = HashMap::new();
    for (name, connection, method) in [
        ("ok", &key, "POST"),
        ("basic", &basic, "PUT"),
        ("flaky", &key, "POST"),
        ("down", &key, "POST"),
    ] {
        let path = if name == "ok" || name == "basic" {
            format!("ok/{name}")
        } else {
            name.to_string()
        };
        let d = ok(aws(&[
            "events",
            "create-api-destination",
            "--name",
            name,
            "--connection-arn",
            connection["ConnectionArn"].as_str().unwrap(),
            "--invocation-endpoint",
            &format!("{receiver}/{path}"),
            "--http-method",
            method,
        ]));
        destination.insert(name, d["ApiDestinationArn"].as_str().unwrap().to_string());
    }
    let targets = |list: &[(&str, Value)]| -> String {
        let v: Vec<Value> = list
            .iter()
            .map(|(name, extra)| {
                let mut t = json!({"Id": name, "Arn": destination[name]});
                for (k, v) in extra.as_object().unwrap() {
                    t[k] = v.clone();
                }
                t
            })
            .collect();
        serde_json::to_string(&v).unwrap()
    };

    // Three rules: NL desk events to two targets; flaky and down with their retry policies.
    for (rule, pattern) in [
        (
            "DeskAudit",
            json!({"source": ["desk.test"], "detail": {"zone": ["NL"]}}),
        ),
        ("Flaky", json!({"source": ["desk.flaky"]})),
        ("Down", json!({"source": ["desk.down"]})),
    ] {
        let put = ok(aws(&[
            "events",
            "put-rule",
            "--name",
            rule,
            "--event-pattern",
            &pattern.to_string(),
        ]));
        assert!(
            put["RuleArn"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{rule}"))
        );
    }
    let put = ok(aws(&[
        "events",
        "put-targets",
        "--rule",
        "DeskAudit",
        "--targets",
        &targets(&[("ok", json!({})), ("basic", json!({}))]),
    ]));
    assert_eq!(put["FailedEntryCount"], 0, "{put}");
    ok(aws(&[
        "events",
        "put-targets",
        "--rule",
        "Flaky",
        "--targets",
        &targets(&[(
            "flaky",
            json!({"RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 600}}),
        )]),
    ]));
    ok(aws(&[
        "events",
        "put-targets",
        "--rule",
        "Down",
        "--targets",
        &targets(&[(
            "down",
            json!({"RetryPolicy": {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 60},
                                   "DeadLetterConfig": {"Arn": "arn:aws:sqs:eu-west-1:000000000000:desk-dlq"}}),
        )]),
    ]));
    let listed = ok(aws(&["events", "list-targets-by-rule", "--rule", "Down"]));
    assert_eq!(
        listed["Targets"][0]["RetryPolicy"]["MaximumRetryAttempts"],
        1
    );

    // The rules are listed beside the template's; the template's cannot be changed here.
    let rules = ok(aws(&["events", "list-rules"]));
    let names: Vec<&str> = rules["Rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    for name in [
        "DeskAudit",
        "Down",
        "Flaky",
        "StoreResultRule",
        "EvaluateOrderRule",
    ] {
        assert!(names.contains(&name), "{names:?}");
    }
    let refused = aws(&[
        "events",
        "put-targets",
        "--rule",
        "StoreResultRule",
        "--targets",
        &targets(&[("ok", json!({}))]),
    ])
    .unwrap_err();
    assert!(
        refused.contains("ManagedRuleException") && refused.contains("template.yaml"),
        "{refused}"
    );
    let refused = aws(&["events", "delete-rule", "--name", "StoreResultRule"]).unwrap_err();
    assert!(refused.contains("ManagedRuleException"), "{refused}");
    let refused = aws(&["events", "delete-rule", "--name", "DeskAudit"]).unwrap_err();
    assert!(
        refused.contains("ValidationException") && refused.contains("has targets"),
        "{refused}"
    );

    // Events: one NL desk event (selected), one DE and one from another source (not).
    let put = ok(aws(&[
        "events",
        "put-events",
        "--entries",
        &entries(&[
            ("desk.test", json!({"zone": "NL", "n": 1})),
            ("desk.test", json!({"zone": "DE-LU", "n": 2})),
            ("desk.other", json!({"zone": "NL", "n": 3})),
            ("desk.flaky", json!({"n": 4})),
            ("desk.down", json!({"n": 5})),
        ]),
    ]));
    assert_eq!(put["FailedEntryCount"], 0);
    let nl_id = put["Entries"][0]["EventId"].as_str().unwrap().to_string();
    wait_for("every delivery", Duration::from_secs(30), || {
        got(&log, "ok/ok").len() == 1
            && got(&log, "ok/basic").len() == 1
            && got(&log, "flaky").len() == 2
            && got(&log, "down").len() == 2
            && !dead_letters(&dir).is_empty()
    })
    .await;
    let by_key = &got(&log, "ok/ok")[0];
    assert_eq!(by_key.body["id"], nl_id.as_str());
    assert_eq!(by_key.body["detail"], json!({"zone": "NL", "n": 1}));
    assert_eq!(by_key.headers["x-api-key"], "s3cret");
    assert_eq!(by_key.method, Method::POST);
    let by_basic = &got(&log, "ok/basic")[0];
    assert_eq!(by_basic.method, Method::PUT);
    assert_eq!(by_basic.body["id"], nl_id.as_str());
    // "desk:pa:ss" in base64.
    assert_eq!(by_basic.headers["authorization"], "Basic ZGVzazpwYTpzcw==");
    let flaky = got(&log, "flaky");
    assert_eq!(
        flaky[0].body["id"], flaky[1].body["id"],
        "the same event, retried"
    );
    let dead = dead_letters(&dir);
    assert_eq!(
        dead.len(),
        1,
        "only the endpoint that keeps failing: {dead:?}"
    );
    assert_eq!(
        (dead[0]["rule"].as_str(), dead[0]["target"].as_str()),
        (Some("Down"), Some("down"))
    );
    assert_eq!(
        dead[0]["attempts"], 2,
        "MaximumRetryAttempts 1: two attempts"
    );
    assert_eq!(dead[0]["event"]["detail"]["n"], 5);

    // A disabled rule selects nothing; enabled again, it does.
    ok(aws(&["events", "disable-rule", "--name", "DeskAudit"]));
    let described = ok(aws(&["events", "describe-rule", "--name", "DeskAudit"]));
    assert_eq!(described["State"], "DISABLED");
    ok(aws(&[
        "events",
        "put-events",
        "--entries",
        &entries(&[("desk.test", json!({"zone": "NL", "n": 6}))]),
    ]));
    ok(aws(&["events", "enable-rule", "--name", "DeskAudit"]));
    ok(aws(&[
        "events",
        "put-events",
        "--entries",
        &entries(&[("desk.test", json!({"zone": "NL", "n": 7}))]),
    ]));
    wait_for("the event after enabling", Duration::from_secs(15), || {
        got(&log, "ok/ok").len() >= 2
    })
    .await;
    let ns: Vec<Value> = got(&log, "ok/ok")
        .iter()
        .map(|r| r.body["detail"]["n"].clone())
        .collect();
    assert_eq!(
        ns,
        [json!(1), json!(7)],
        "the event put while the rule was disabled is not delivered"
    );

    // A replay of the archive to DeskAudit only: every NL desk event archived (the one put while
    // the rule was disabled too: a replay routes by the rules as they are now), marked, and
    // nothing to the other rules.
    let rule_arn = described["Arn"].as_str().unwrap().to_string();
    let archive = ok(aws(&["events", "list-archives"]));
    let archive_arn = archive["Archives"][0]["ArchiveArn"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| {
            let name = archive["Archives"][0]["ArchiveName"].as_str().unwrap();
            ok(aws(&["events", "describe-archive", "--archive-name", name]))["ArchiveArn"]
                .as_str()
                .unwrap()
                .to_string()
        });
    let started = ok(aws(&[
        "events",
        "start-replay",
        "--replay-name",
        "desk-replay",
        "--event-source-arn",
        &archive_arn,
        "--event-start-time",
        "2026-11-27T00:00:00Z",
        "--event-end-time",
        "2026-11-28T00:00:00Z",
        "--destination",
        &json!({"Arn": up_bus_arn(&aws), "FilterArns": [rule_arn]}).to_string(),
    ]));
    assert_eq!(started["State"], "STARTING");
    wait_for("the replay", Duration::from_secs(15), || {
        got(&log, "ok/ok").len() >= 5
    })
    .await;
    let replayed: Vec<Received> = got(&log, "ok/ok").into_iter().skip(2).collect();
    assert!(
        replayed
            .iter()
            .all(|r| r.body["replay-name"] == "desk-replay"),
        "{replayed:?}"
    );
    let mut ns: Vec<i64> = replayed
        .iter()
        .map(|r| r.body["detail"]["n"].as_i64().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, [1, 6, 7]);
    let described = ok(aws(&[
        "events",
        "describe-replay",
        "--replay-name",
        "desk-replay",
    ]));
    assert_eq!(described["State"], "COMPLETED");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        got(&log, "flaky").len(),
        2,
        "the replay went to DeskAudit only"
    );
    assert_eq!(got(&log, "ok/ok").len(), 5);

    // Two rules that put what they match back on the bus, and one that sends it on: the event
    // goes round once per forwarding rule, then stops (a forwarded event is not forwarded
    // again), where two such rules used to multiply it without end.
    let bus_arn = up_bus_arn(&aws);
    for rule in ["LoopA", "LoopB", "LoopSink"] {
        ok(aws(&[
            "events",
            "put-rule",
            "--name",
            rule,
            "--event-pattern",
            r#"{"source":["desk.loop"]}"#,
        ]));
    }
    for rule in ["LoopA", "LoopB"] {
        ok(aws(&[
            "events",
            "put-targets",
            "--rule",
            rule,
            "--targets",
            &json!([{"Id": "bus", "Arn": bus_arn}]).to_string(),
        ]));
    }
    ok(aws(&[
        "events",
        "put-targets",
        "--rule",
        "LoopSink",
        "--targets",
        &targets(&[("ok", json!({}))]),
    ]));
    ok(aws(&[
        "events",
        "put-events",
        "--entries",
        &entries(&[("desk.loop", json!({"n": 9}))]),
    ]));
    let looped = || {
        got(&log, "ok/ok")
            .iter()
            .filter(|r| r.body["detail"]["n"] == 9)
            .count()
    };
    wait_for("the forwarded copies", Duration::from_secs(15), || {
        looped() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        looped(),
        3,
        "the original and one copy per forwarding rule, then no more"
    );
    let archived = up::archive(&dir)
        .iter()
        .filter(|e| e["source"] == "desk.loop")
        .count();
    assert_eq!(archived, 3);

    // kill -9, restart: the rules, targets, connections and destinations are still there and
    // keep delivering.
    up.kill9();
    let up = up::start(&dir, &[]);
    let endpoint = up.url("");
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let aws = |args: &[&str]| run_aws(&dir, &endpoint, args);
    let listed = ok(aws(&[
        "events",
        "list-targets-by-rule",
        "--rule",
        "DeskAudit",
    ]));
    assert_eq!(listed["Targets"].as_array().unwrap().len(), 2, "{listed}");
    ok(aws(&[
        "events",
        "put-events",
        "--entries",
        &entries(&[("desk.test", json!({"zone": "NL", "n": 8}))]),
    ]));
    wait_for(
        "delivery after the restart",
        Duration::from_secs(15),
        || {
            got(&log, "ok/ok")
                .iter()
                .any(|r| r.body["detail"]["n"] == 8)
                && got(&log, "ok/basic")
                    .iter()
                    .any(|r| r.body["detail"]["n"] == 8)
        },
    )
    .await;

    // Taken down again through the API: targets, then the rule.
    ok(aws(&[
        "events",
        "remove-targets",
        "--rule",
        "DeskAudit",
        "--ids",
        "ok",
        "basic",
    ]));
    ok(aws(&["events", "delete-rule", "--name", "DeskAudit"]));
    let gone = aws(&["events", "describe-rule", "--name", "DeskAudit"]).unwrap_err();
    assert!(gone.contains("ResourceNotFoundException"), "{gone}");
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}

fn up_bus_arn(aws: &dyn Fn(&[&str]) -> Result<Value, String>) -> String {
    ok(aws(&["events", "describe-event-bus", "--name", BUS]))["Arn"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs `aws events test-event-pattern` on every case in one Python process, through the CLI's
/// own entry point (`awscli.clidriver`), so the suite's cases cost milliseconds each.
const CLI_CASES: &str = r#"
import io, json, os, sys, contextlib
from awscli.clidriver import create_clidriver
endpoint, path = sys.argv[1], sys.argv[2]
cases = json.load(open(path))
out = []
for pattern, event in cases:
    driver = create_clidriver()
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = driver.main(["events", "test-event-pattern", "--endpoint-url", endpoint,
                          "--output", "json", "--event-pattern", pattern, "--event", event])
    if rc == 0:
        out.append(json.loads(stdout.getvalue())["Result"])
    else:
        out.append("error: " + stderr.getvalue().strip())
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_events_test_event_pattern_answers_as_energy_events_test_pattern_on_the_conformance_suite()
 {
    let dir = up::data_dir("aws-cli-patterns");
    let up = up::start(&dir, &[]);
    let endpoint = up.url("");
    let endpoint = endpoint.trim_end_matches('/');
    let mut suite: Vec<(String, Value, Option<bool>)> = cases::cases()
        .into_iter()
        .map(|(what, pattern, detail, expected)| {
            (
                what.to_string(),
                json!([pattern.to_string(), cases::event(detail).to_string()]),
                Some(expected),
            )
        })
        .collect();
    // Patterns EventBridge refuses: both refuse them.
    for pattern in [
        json!({"source": "aws.ec2"}),
        json!({"detail": {"x": [{"contains": "a"}]}}),
        json!({"detail": {"n": [{"numeric": [">", "zero"]}]}}),
    ] {
        suite.push((
            format!("refused {pattern}"),
            json!([pattern.to_string(), cases::event(json!({})).to_string()]),
            None,
        ));
    }
    let file = dir.join("cases.json");
    std::fs::create_dir_all(&dir).unwrap();
    let pairs: Vec<&Value> = suite.iter().map(|(_, p, _)| p).collect();
    std::fs::write(&file, serde_json::to_string(&pairs).unwrap()).unwrap();
    let python = root().join(".venv/bin/python");
    let out = std::process::Command::new(&python)
        .args(["-c", CLI_CASES, endpoint])
        .arg(&file)
        .env("AWS_CONFIG_FILE", aws_config(&dir))
        .env("AWS_ACCESS_KEY_ID", "any")
        .env("AWS_SECRET_ACCESS_KEY", "any")
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup-venv)", python.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli.len(), suite.len());
    let mut failures = Vec::new();
    for ((what, pair, expected), aws_answer) in suite.iter().zip(&cli) {
        let run = up::energy()
            .args([
                "events",
                "test-pattern",
                "--pattern",
                pair[0].as_str().unwrap(),
                "--event",
                pair[1].as_str().unwrap(),
            ])
            .output()
            .unwrap();
        let ours = if run.status.success() {
            serde_json::from_slice::<Value>(&run.stdout).unwrap()["Result"].clone()
        } else {
            json!(format!(
                "error: {}",
                String::from_utf8_lossy(&run.stderr).trim()
            ))
        };
        let agree = match (aws_answer, &ours) {
            (Value::Bool(a), Value::Bool(b)) => a == b && expected.is_none_or(|e| e == *a),
            (Value::String(a), Value::String(b)) => {
                expected.is_none()
                    && a.contains("InvalidEventPatternException")
                    && b.contains("InvalidEventPatternException")
            }
            _ => false,
        };
        if !agree {
            failures.push(format!(
                "{what}: aws {aws_answer}, energy {ours}, expected {expected:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        suite.len(),
        failures.join("\n")
    );
    drop(up);
    let _ = std::fs::remove_dir_all(dir);
}
