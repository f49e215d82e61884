//! The pattern conformance table: the examples of the EventBridge user guide ("Content
//! filtering in Amazon EventBridge event patterns", "Comparison operators", "Event patterns"),
//! each with events that match and events that do not. Shared by `tests/conformance.rs` (our
//! matcher against the guide) and `crates/aws/tests/pattern_differential.rs` (our matcher against
//! moto's).

use serde_json::{Value, json};

/// The guide's EC2 state-change event, with the detail fields the examples filter on.
pub fn event(detail: Value) -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "111122223333",
        "time": "2017-12-22T18:43:48Z",
        "region": "us-west-1",
        "resources": [
            "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f2"
        ],
        "detail": detail
    })
}

/// (what, pattern, detail of the event, expected).
pub fn cases() -> Vec<(&'static str, Value, Value, bool)> {
    vec![
        // Exact values, nested fields, arrays.
        ("exact", json!({"source": ["aws.ec2"]}), json!({}), true),
        ("exact no", json!({"source": ["aws.s3"]}), json!({}), false),
        (
            "exact one of",
            json!({"source": ["aws.s3", "aws.ec2"]}),
            json!({}),
            true,
        ),
        (
            "nested",
            json!({"detail": {"state": ["terminated"]}}),
            json!({"state": "terminated"}),
            true,
        ),
        (
            "nested no",
            json!({"detail": {"state": ["running"]}}),
            json!({"state": "terminated"}),
            false,
        ),
        (
            "missing field",
            json!({"detail": {"state": ["running"]}}),
            json!({}),
            false,
        ),
        (
            "and",
            json!({"source": ["aws.ec2"], "detail": {"state": ["terminated"]}}),
            json!({"state": "running"}),
            false,
        ),
        (
            "array intersection",
            json!({"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f", "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]}),
            json!({}),
            true,
        ),
        (
            "array no intersection",
            json!({"resources": ["arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]}),
            json!({}),
            false,
        ),
        (
            "array of objects",
            json!({"detail": {"items": {"name": ["b"]}}}),
            json!({"items": [{"name": "a"}, {"name": "b"}]}),
            true,
        ),
        (
            "number",
            json!({"detail": {"x-limit": [123]}}),
            json!({"x-limit": 123}),
            true,
        ),
        (
            "number is not a string",
            json!({"detail": {"x-limit": [123]}}),
            json!({"x-limit": "123"}),
            false,
        ),
        (
            "null",
            json!({"detail": {"responseElements": [null]}}),
            json!({"responseElements": null}),
            true,
        ),
        (
            "null is not missing",
            json!({"detail": {"responseElements": [null]}}),
            json!({}),
            false,
        ),
        (
            "empty string",
            json!({"detail": {"eventVersion": [""]}}),
            json!({"eventVersion": ""}),
            true,
        ),
        (
            "empty string no",
            json!({"detail": {"eventVersion": [""]}}),
            json!({"eventVersion": "1.0"}),
            false,
        ),
        (
            "boolean",
            json!({"detail": {"enabled": [true]}}),
            json!({"enabled": true}),
            true,
        ),
        // Prefix and suffix, with and without case.
        (
            "prefix",
            json!({"time": [{"prefix": "2017-12-22"}]}),
            json!({}),
            true,
        ),
        (
            "prefix no",
            json!({"time": [{"prefix": "2017-10-02"}]}),
            json!({}),
            false,
        ),
        (
            "prefix ignore case",
            json!({"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}}),
            json!({"service": "eventbridge"}),
            true,
        ),
        (
            "prefix ignore case no",
            json!({"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}}),
            json!({"service": "s3"}),
            false,
        ),
        (
            "suffix",
            json!({"detail": {"FileName": [{"suffix": ".png"}]}}),
            json!({"FileName": "image.png"}),
            true,
        ),
        (
            "suffix no",
            json!({"detail": {"FileName": [{"suffix": ".png"}]}}),
            json!({"FileName": "image.PNG"}),
            false,
        ),
        (
            "suffix ignore case",
            json!({"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}}),
            json!({"FileName": "image.PNG"}),
            true,
        ),
        (
            "prefix on a number",
            json!({"detail": {"n": [{"prefix": "1"}]}}),
            json!({"n": 12}),
            false,
        ),
        // Anything-but.
        (
            "anything-but",
            json!({"detail": {"state": [{"anything-but": "initializing"}]}}),
            json!({"state": "running"}),
            true,
        ),
        (
            "anything-but no",
            json!({"detail": {"state": [{"anything-but": "initializing"}]}}),
            json!({"state": "initializing"}),
            false,
        ),
        (
            "anything-but missing",
            json!({"detail": {"state": [{"anything-but": "initializing"}]}}),
            json!({}),
            false,
        ),
        // Found by the differential test against moto: a present null, number or boolean is not
        // what anything-but excludes, so it matches ("matches anything except what's provided").
        (
            "anything-but null",
            json!({"detail": {"state": [{"anything-but": "initializing"}]}}),
            json!({"state": null}),
            true,
        ),
        (
            "anything-but suffix null",
            json!({"detail": {"file": [{"anything-but": {"suffix": ".png"}}]}}),
            json!({"file": null}),
            true,
        ),
        (
            "anything-but prefix number",
            json!({"detail": {"state": [{"anything-but": {"prefix": "in"}}]}}),
            json!({"state": 5}),
            true,
        ),
        (
            "anything-but equals-ignore-case number",
            json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["a", "B"]}}]}}),
            json!({"state": 0}),
            true,
        ),
        (
            "anything-but wildcard boolean",
            json!({"detail": {"state": [{"anything-but": {"wildcard": "a*"}}]}}),
            json!({"state": true}),
            true,
        ),
        (
            "anything-but number",
            json!({"detail": {"x-limit": [{"anything-but": 123}]}}),
            json!({"x-limit": 456}),
            true,
        ),
        (
            "anything-but number no",
            json!({"detail": {"x-limit": [{"anything-but": 123}]}}),
            json!({"x-limit": 123}),
            false,
        ),
        (
            "anything-but list",
            json!({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}),
            json!({"state": "running"}),
            true,
        ),
        (
            "anything-but list no",
            json!({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}),
            json!({"state": "stopped"}),
            false,
        ),
        (
            "anything-but numbers",
            json!({"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}),
            json!({"x-limit": 200}),
            false,
        ),
        (
            "anything-but prefix",
            json!({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}),
            json!({"state": "running"}),
            true,
        ),
        (
            "anything-but prefix no",
            json!({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}),
            json!({"state": "initializing"}),
            false,
        ),
        (
            "anything-but suffix",
            json!({"detail": {"FileName": [{"anything-but": {"suffix": ".txt"}}]}}),
            json!({"FileName": "notes.md"}),
            true,
        ),
        (
            "anything-but suffix no",
            json!({"detail": {"FileName": [{"anything-but": {"suffix": ".txt"}}]}}),
            json!({"FileName": "notes.txt"}),
            false,
        ),
        (
            "anything-but ignore case",
            json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["Stopped", "OverLoaded"]}}]}}),
            json!({"state": "running"}),
            true,
        ),
        (
            "anything-but ignore case no",
            json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["Stopped", "OverLoaded"]}}]}}),
            json!({"state": "STOPPED"}),
            false,
        ),
        (
            "anything-but wildcard",
            json!({"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}}),
            json!({"FilePath": "/usr/bin/env"}),
            true,
        ),
        (
            "anything-but wildcard no",
            json!({"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}}),
            json!({"FilePath": "/usr/lib/libc.so"}),
            false,
        ),
        // Numeric.
        (
            "numeric",
            json!({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"numeric": ["=", 3.018e2]}]}}),
            json!({"c-count": 5, "d-count": 7, "x-limit": 301.8}),
            true,
        ),
        (
            "numeric upper bound",
            json!({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}),
            json!({"c-count": 6}),
            false,
        ),
        (
            "numeric lower bound",
            json!({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}),
            json!({"c-count": 0}),
            false,
        ),
        (
            "numeric on a string",
            json!({"detail": {"c-count": [{"numeric": [">", 0]}]}}),
            json!({"c-count": "5"}),
            false,
        ),
        (
            "numeric >=",
            json!({"detail": {"n": [{"numeric": [">=", 10]}]}}),
            json!({"n": 10}),
            true,
        ),
        // Exists.
        (
            "exists",
            json!({"detail": {"state": [{"exists": true}]}}),
            json!({"state": "running"}),
            true,
        ),
        (
            "exists no",
            json!({"detail": {"state": [{"exists": true}]}}),
            json!({}),
            false,
        ),
        (
            "exists false",
            json!({"detail": {"state": [{"exists": false}]}}),
            json!({}),
            true,
        ),
        (
            "exists false no",
            json!({"detail": {"state": [{"exists": false}]}}),
            json!({"state": "running"}),
            false,
        ),
        (
            "exists only on leaves",
            json!({"detail": {"alpha": [{"exists": true}]}}),
            json!({"alpha": {"beta": "x"}}),
            false,
        ),
        // Exists false under a parent that is missing or not an object matches, as EventBridge
        // does: the field does not exist.
        (
            "exists false, parent missing",
            json!({"detail": {"error": {"code": [{"exists": false}]}}}),
            json!({"state": "running"}),
            true,
        ),
        (
            "exists false, parent not an object",
            json!({"detail": {"error": {"code": [{"exists": false}]}}}),
            json!({"error": "boom"}),
            true,
        ),
        (
            "exists false, parent has it",
            json!({"detail": {"error": {"code": [{"exists": false}]}}}),
            json!({"error": {"code": "E1"}}),
            false,
        ),
        (
            "exists false, parent without it",
            json!({"detail": {"error": {"code": [{"exists": false}]}}}),
            json!({"error": {"message": "x"}}),
            true,
        ),
        (
            "exists false, three levels, grandparent missing",
            json!({"detail": {"a": {"b": {"c": [{"exists": false}]}}}}),
            json!({}),
            true,
        ),
        (
            "exists false, three levels, parent missing",
            json!({"detail": {"a": {"b": {"c": [{"exists": false}]}}}}),
            json!({"a": {"x": 1}}),
            true,
        ),
        (
            "exists false, three levels, parent not an object",
            json!({"detail": {"a": {"b": {"c": [{"exists": false}]}}}}),
            json!({"a": {"b": 5}}),
            true,
        ),
        (
            "exists false, three levels, present",
            json!({"detail": {"a": {"b": {"c": [{"exists": false}]}}}}),
            json!({"a": {"b": {"c": 0}}}),
            false,
        ),
        (
            "exists true, parent missing",
            json!({"detail": {"error": {"code": [{"exists": true}]}}}),
            json!({}),
            false,
        ),
        (
            "exists false with a sibling that must match, parent missing",
            json!({"detail": {"error": {"code": [{"exists": false}], "kind": ["x"]}}}),
            json!({}),
            false,
        ),
        (
            "detail null",
            json!({"detail": {"error": {"code": [{"exists": false}]}}}),
            Value::Null,
            true,
        ),
        // Equals-ignore-case.
        (
            "equals-ignore-case",
            json!({"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]}),
            json!({}),
            true,
        ),
        (
            "equals-ignore-case no",
            json!({"detail-type": [{"equals-ignore-case": "ec2 instance state"}]}),
            json!({}),
            false,
        ),
        // Wildcard.
        (
            "wildcard",
            json!({"detail": {"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]}}),
            json!({"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/energy"}),
            true,
        ),
        (
            "wildcard no",
            json!({"detail": {"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]}}),
            json!({"EventBusArn": "arn:aws:events:eu-west-1:123456789012:event-bus/energy"}),
            false,
        ),
        (
            "wildcard suffix",
            json!({"detail": {"FileName": [{"wildcard": "*.png"}]}}),
            json!({"FileName": "dir/file.png"}),
            true,
        ),
        (
            "wildcard escaped star",
            json!({"detail": {"v": [{"wildcard": "a\\*b"}]}}),
            json!({"v": "a*b"}),
            true,
        ),
        (
            "wildcard escaped star no",
            json!({"detail": {"v": [{"wildcard": "a\\*b"}]}}),
            json!({"v": "axxb"}),
            false,
        ),
        // CIDR.
        (
            "cidr",
            json!({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}),
            json!({"sourceIPAddress": "10.0.0.255"}),
            true,
        ),
        (
            "cidr no",
            json!({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}),
            json!({"sourceIPAddress": "10.0.1.0"}),
            false,
        ),
        (
            "cidr v6",
            json!({"detail": {"sourceIPAddress": [{"cidr": "2001:db8::/32"}]}}),
            json!({"sourceIPAddress": "2001:db8::ff00:42:8329"}),
            true,
        ),
        (
            "cidr not an ip",
            json!({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}),
            json!({"sourceIPAddress": "example.com"}),
            false,
        ),
        // $or.
        (
            "$or nested",
            json!({"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]}, {"d-count": [{"numeric": ["<", 10]}]}, {"x-limit": [{"numeric": ["=", 3.018e2]}]}]}}),
            json!({"c-count": 9, "d-count": 7}),
            true,
        ),
        (
            "$or nested no",
            json!({"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]}, {"d-count": [{"numeric": ["<", 10]}]}]}}),
            json!({"c-count": 9, "d-count": 12}),
            false,
        ),
        (
            "$or top level",
            json!({"source": ["aws.ec2"], "$or": [{"detail": {"metricName": ["CPUUtilization", "ReadLatency"]}}, {"detail": {"namespace": ["AWS/EC2", "AWS/ES"]}}]}),
            json!({"namespace": "AWS/EC2"}),
            true,
        ),
        (
            "$or top level and",
            json!({"source": ["aws.s3"], "$or": [{"detail": {"metricName": ["CPUUtilization"]}}, {"detail": {"namespace": ["AWS/EC2"]}}]}),
            json!({"namespace": "AWS/EC2"}),
            false,
        ),
        // Several matchers on one field: any of them.
        (
            "mixed matchers",
            json!({"detail": {"state": [{"prefix": "run"}, "stopped"]}}),
            json!({"state": "stopped"}),
            true,
        ),
    ]
}
