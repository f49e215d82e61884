//! The pattern conformance suite: the examples of the EventBridge user guide ("Content filtering
//! in Amazon EventBridge event patterns", "Comparison operators", "Event patterns"), each with
//! events that match and events that do not (the table is `tests/cases/mod.rs`), and the patterns
//! EventBridge refuses.

mod cases;

use cases::{cases, event};
use energy_patterns::Pattern;
use serde_json::json;

#[test]
fn every_documented_example_matches_or_not_as_the_guide_says() {
    let mut failures = Vec::new();
    for (what, pattern, detail, expected) in cases() {
        let compiled = Pattern::compile(&pattern)
            .unwrap_or_else(|e| panic!("{what}: {pattern} does not compile: {e}"));
        let got = compiled.matches(&event(detail.clone()));
        if got != expected {
            failures.push(format!(
                "{what}: {pattern} on detail {detail}: {got}, expected {expected}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn patterns_eventbridge_refuses_are_errors_that_say_where() {
    for (pattern, path, says) in [
        (
            json!({"detail": {"x": [{"contains": "a"}]}}),
            "detail.x[0]",
            "unsupported operator",
        ),
        (json!({"source": "aws.ec2"}), "source", "in an array"),
        (json!({"source": []}), "source", "empty"),
        (
            json!({"detail": {"n": [{"numeric": [">", "zero"]}]}}),
            "detail.n[0].numeric",
            "not a number",
        ),
        (
            json!({"detail": {"n": [{"numeric": [">", 1, ">", 2]}]}}),
            "detail.n[0].numeric",
            "one lower",
        ),
        (
            json!({"detail": {"v": [{"wildcard": "a**b"}]}}),
            "detail.v[0].wildcard",
            "consecutive",
        ),
        (
            json!({"detail": {"ip": [{"cidr": "10.0.0.0/33"}]}}),
            "detail.ip[0].cidr",
            "CIDR",
        ),
        (
            json!({"detail": {"s": [{"anything-but": {"numeric": [">", 1]}}]}}),
            "detail.s[0].anything-but",
            "does not take",
        ),
        (
            json!({"detail": {"s": [{"exists": "yes"}]}}),
            "detail.s[0].exists",
            "true or false",
        ),
        (
            json!({"$or": [{"source": ["a"]}]}),
            "$or",
            "two alternatives",
        ),
        (json!({}), "", "at least one field"),
    ] {
        let e = Pattern::compile(&pattern).expect_err(&pattern.to_string());
        assert_eq!(e.path, path, "{pattern}: {e}");
        assert!(e.message.contains(says), "{pattern}: {e}");
    }
}
