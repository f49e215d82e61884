//! `energy events test-pattern` answers like `aws events test-event-pattern`; the matcher's own
//! conformance suite lives with it, in `crates/patterns/tests/conformance.rs`.

use std::process::Command;

use serde_json::{Value, json};

/// The guide's EC2 state-change event.
fn event(detail: Value) -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "111122223333",
        "time": "2017-12-22T18:43:48Z",
        "region": "us-west-1",
        "resources": [],
        "detail": detail
    })
}

fn test_pattern(pattern: &str, event: &str) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_energy"))
        .args([
            "events",
            "test-pattern",
            "--pattern",
            pattern,
            "--event",
            event,
        ])
        .output()
        .expect("run energy");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn energy_events_test_pattern_answers_like_the_aws_cli() {
    let e = event(json!({"state": "terminated"})).to_string();
    let (code, out, _) = test_pattern(r#"{"detail": {"state": ["terminated"]}}"#, &e);
    assert_eq!((code, out.trim()), (Some(0), r#"{"Result":true}"#));
    let (code, out, _) = test_pattern(r#"{"detail": {"state": [{"prefix": "run"}]}}"#, &e);
    assert_eq!((code, out.trim()), (Some(0), r#"{"Result":false}"#));

    let dir = std::env::temp_dir().join(format!("energy-pattern-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("event.json");
    std::fs::write(&file, &e).unwrap();
    let (code, out, _) = test_pattern(
        r#"{"source": ["aws.ec2"]}"#,
        &format!("file://{}", file.display()),
    );
    assert_eq!((code, out.trim()), (Some(0), r#"{"Result":true}"#));

    let (code, _, err) = test_pattern(r#"{"detail": {"x": [{"contains": "a"}]}}"#, &e);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("InvalidEventPatternException") && err.contains("detail.x[0]"),
        "{err}"
    );
    let (code, _, err) = test_pattern(r#"{"source": ["a"]}"#, r#"{"source": "a"}"#);
    assert_eq!(code, Some(2));
    assert!(err.contains("lacks id, account, time"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
