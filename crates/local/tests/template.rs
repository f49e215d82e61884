//! `template.yaml` checked against what is written out by hand in this file, never against
//! itself: every rule on the bus (name, whole pattern, target, `RetryPolicy`, dead-letter queue),
//! every function's `EventInvokeConfig`, the sweeper's schedule, every wildcard in a policy, and
//! each function's IAM actions against the AWS SDK calls its code makes. The in-process bus
//! (`Topology::embedded`) must route as the same tables say, every rule must select events that
//! exist, and every event the handlers put on the bus must have its schema.
//!
//! The template is read with its CloudFormation tags kept, in CloudFormation's JSON form:
//! `!Ref X` is `{"Ref": "X"}`, `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` is
//! `{"Fn::Sub": s}`, `!If [..]` is `{"Fn::If": [..]}`. So `Schedule: SweepSchedule` (a plain
//! string) and `Schedule: !Ref SweepSchedule` are told apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use energy_core::events::DetailType;
use energy_local::function::Function;
use energy_local::topology::{Target, Topology};
use energy_patterns::Pattern;
use jiff::SignedDuration;
use serde_json::{Value, json};

// ---------------------------------------------------------------- the literal tables

/// Every function of the template: its logical id and the handler binary it builds.
const FUNCTIONS: [(&str, &str); 5] = [
    ("SubmitOrderFunction", "submit-order"),
    ("EvaluateOrderFunction", "evaluate-order"),
    ("StoreResultFunction", "store-result"),
    ("NotifySlackFunction", "notify-slack"),
    ("SweepPendingFunction", "sweep-pending"),
];

/// One EventBridge rule on our bus, as the template must define it.
struct RuleSpec {
    name: &'static str,
    /// The function (logical id) the rule invokes.
    target: &'static str,
    /// The whole event pattern.
    pattern: Value,
    max_retry_attempts: u64,
    max_event_age_seconds: u64,
    /// The SQS queue (logical id) the rule puts what it could not deliver into.
    dead_letter_queue: &'static str,
}

/// Every rule on the bus. Nothing else may route events.
fn rules() -> Vec<RuleSpec> {
    vec![
        RuleSpec {
            name: "EvaluateOrderRule",
            target: "EvaluateOrderFunction",
            pattern: json!({
                "source": ["energy.orders"],
                "detail-type": ["OrderSubmitted", "OrderEvaluationDue", "OrderAmended", "OrderChecksDue"]
            }),
            max_retry_attempts: 8,
            max_event_age_seconds: 3600,
            dead_letter_queue: "EvaluateOrderDlq",
        },
        RuleSpec {
            name: "StoreResultRule",
            target: "StoreResultFunction",
            pattern: json!({"source": ["energy.orders"], "detail-type": ["OrderReady"]}),
            max_retry_attempts: 8,
            max_event_age_seconds: 3600,
            dead_letter_queue: "StoreResultDlq",
        },
        RuleSpec {
            name: "NotifySlackRule",
            target: "NotifySlackFunction",
            pattern: json!({"source": ["energy.orders"], "detail-type": ["OrderFailed", "OrderChangeRefused"]}),
            max_retry_attempts: 8,
            max_event_age_seconds: 3600,
            dead_letter_queue: "NotifySlackDlq",
        },
        RuleSpec {
            name: "ProcessingErrorRule",
            target: "NotifySlackFunction",
            pattern: json!({
                "source": ["lambda"],
                "detail-type": ["Lambda Function Invocation Result - Failure"],
                "detail": {"requestContext": {"functionArn": [{"wildcard": "arn:*:lambda:*:*:function:energy-*"}]}}
            }),
            max_retry_attempts: 8,
            max_event_age_seconds: 3600,
            dead_letter_queue: "ProcessingErrorDlq",
        },
        RuleSpec {
            name: "PipelineFailedRule",
            target: "NotifySlackFunction",
            pattern: json!({
                "source": ["aws.codepipeline"],
                "detail-type": ["CodePipeline Pipeline Execution State Change"],
                "detail": {"state": ["FAILED"]}
            }),
            max_retry_attempts: 8,
            max_event_age_seconds: 3600,
            dead_letter_queue: "ProcessingErrorDlq",
        },
    ]
}

/// The sweeper's schedule rule (on the default bus): its event name, function, schedule
/// parameter and that parameter's default, retry policy and dead-letter queue.
const SWEEP_EVENT: &str = "SweepSchedule";
const SWEEP_FUNCTION: &str = "SweepPendingFunction";
const SWEEP_PARAMETER: &str = "SweepSchedule";
const SWEEP_DEFAULT: &str = "rate(2 minutes)";
const SWEEP_RETRIES: u64 = 0;
const SWEEP_MAX_AGE_SECONDS: u64 = 60;
const SWEEP_DLQ: &str = "SweepDlq";
/// Named, so the dead-letter queue's policy can name the rule (`aws:SourceArn`).
const SWEEP_RULE_NAME: &str = "energy-${EnvironmentName}-sweep";

/// A Lambda destination: its type and the resource (logical id) whose ARN it is.
struct Destination {
    kind: &'static str,
    arn_of: &'static str,
}

/// A function's `EventInvokeConfig`; all `None` means the function has none (Lambda's defaults).
struct InvokeSpec {
    function: &'static str,
    maximum_retry_attempts: Option<u64>,
    maximum_event_age_seconds: Option<u64>,
    on_failure: Option<Destination>,
    on_success: Option<Destination>,
}

const INVOKE: [InvokeSpec; 5] = [
    InvokeSpec {
        function: "SubmitOrderFunction",
        maximum_retry_attempts: None,
        maximum_event_age_seconds: None,
        on_failure: None,
        on_success: None,
    },
    InvokeSpec {
        function: "EvaluateOrderFunction",
        maximum_retry_attempts: Some(2),
        maximum_event_age_seconds: None,
        on_failure: Some(Destination {
            kind: "EventBridge",
            arn_of: "EventBus",
        }),
        on_success: None,
    },
    InvokeSpec {
        function: "StoreResultFunction",
        maximum_retry_attempts: Some(2),
        maximum_event_age_seconds: None,
        on_failure: Some(Destination {
            kind: "EventBridge",
            arn_of: "EventBus",
        }),
        on_success: None,
    },
    InvokeSpec {
        function: "NotifySlackFunction",
        maximum_retry_attempts: Some(2),
        maximum_event_age_seconds: None,
        on_failure: Some(Destination {
            kind: "SQS",
            arn_of: "NotifySlackFailures",
        }),
        on_success: None,
    },
    InvokeSpec {
        function: "SweepPendingFunction",
        maximum_retry_attempts: Some(0),
        maximum_event_age_seconds: Some(60),
        on_failure: None,
        on_success: None,
    },
];

/// Every wildcard (`*` anywhere in an Action, Principal or Resource of a policy statement) the
/// template may hold: (resource, effect, the statement's actions, field, value, why).
const ALLOWED_WILDCARDS: [(&str, &str, &str, &str, &str, &str); 15] = [
    (
        "EvaluateOrderFunction",
        "Deny",
        "events:PutEvents",
        "Resource",
        "*",
        "a deny on every bus: the role puts no other event anywhere",
    ),
    (
        "StoreResultFunction",
        "Deny",
        "events:PutEvents",
        "Resource",
        "*",
        "a deny on every bus: the role puts no other event anywhere",
    ),
    (
        "AlarmKey",
        "Allow",
        "kms:*",
        "Action",
        "kms:*",
        "a key policy's root statement: the account's IAM policies decide who uses the key",
    ),
    (
        "AlarmKey",
        "Allow",
        "kms:*",
        "Resource",
        "*",
        "in a key policy, \"*\" is the key itself",
    ),
    (
        "AlarmKey",
        "Allow",
        "kms:Decrypt,kms:GenerateDataKey*",
        "Action",
        "kms:GenerateDataKey*",
        "what CloudWatch needs to publish to an encrypted topic (GenerateDataKey and its variants)",
    ),
    (
        "AlarmKey",
        "Allow",
        "kms:Decrypt,kms:GenerateDataKey*",
        "Resource",
        "*",
        "in a key policy, \"*\" is the key itself",
    ),
    (
        "OrdersReaderPolicy",
        "Allow",
        "execute-api:Invoke",
        "Resource",
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/GET/orders/*",
        "any stage, any record id: the read route only",
    ),
    (
        "OrdersWriterPolicy",
        "Allow",
        "execute-api:Invoke",
        "Resource",
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/POST/orders",
        "any stage: the POST route only",
    ),
    (
        "OrdersWriterPolicy",
        "Allow",
        "execute-api:Invoke",
        "Resource",
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/PUT/orders/*",
        "any stage, any record id: the amend route only",
    ),
    (
        "OrdersWriterPolicy",
        "Allow",
        "execute-api:Invoke",
        "Resource",
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/DELETE/orders/*",
        "any stage, any record id: the withdraw route only",
    ),
    (
        "ResultsBucketPolicy",
        "Deny",
        "s3:*",
        "Principal",
        "*",
        "the TLS-only deny applies to every principal",
    ),
    (
        "ResultsBucketPolicy",
        "Deny",
        "s3:*",
        "Action",
        "s3:*",
        "the TLS-only deny applies to every S3 action: no request may use plain HTTP",
    ),
    (
        "ResultsBucketPolicy",
        "Deny",
        "s3:*",
        "Resource",
        "${ResultsBucket.Arn}/*",
        "the TLS-only deny covers every object of the bucket",
    ),
    (
        "EvaluateOrderFunction",
        "Allow",
        "scheduler:CreateSchedule",
        "Resource",
        "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${ScheduleGroup}/*",
        "one schedule per round of checks, named at run time, only in our schedule group",
    ),
    (
        "StoreResultFunction",
        "Allow",
        "s3:PutObject",
        "Resource",
        "${ResultsBucket.Arn}/results/*",
        "one object per order, keyed at run time, only under results/",
    ),
];

/// The AWS SDK calls each function's code can make: (sdk, operation, template condition under
/// which the call is made). Read off the ports each handler's `main.rs` wires
/// (`crates/aws/src/wiring.rs`) and the operations each adapter in `crates/aws/src` calls;
/// checked against that code below, so it cannot drift from it.
type Call = (&'static str, &'static str, Option<&'static str>);
const FUNCTION_SDK_CALLS: [(&str, &[Call]); 5] = [
    (
        "submit-order",
        &[
            ("dynamodb", "GetItem", None),
            ("dynamodb", "PutItem", None),
            ("dynamodb", "TransactWriteItems", None),
            ("eventbridge", "PutEvents", None),
        ],
    ),
    (
        "evaluate-order",
        &[
            ("dynamodb", "GetItem", None),
            ("dynamodb", "PutItem", None),
            ("dynamodb", "TransactWriteItems", None),
            // The due index, where a round of checks finds its orders.
            ("dynamodb", "Query", None),
            ("eventbridge", "PutEvents", None),
            ("scheduler", "CreateSchedule", None),
            // The platform's API key, read only when PLATFORM_API_KEY_SECRET_ARN is set.
            ("secretsmanager", "GetSecretValue", Some("HasPlatformKey")),
        ],
    ),
    (
        "store-result",
        &[
            ("dynamodb", "GetItem", None),
            ("dynamodb", "PutItem", None),
            ("dynamodb", "TransactWriteItems", None),
            ("eventbridge", "PutEvents", None),
            ("s3", "PutObject", None),
        ],
    ),
    (
        "notify-slack",
        &[
            ("dynamodb", "GetItem", None),
            ("dynamodb", "PutItem", None),
            ("dynamodb", "TransactWriteItems", None),
            ("secretsmanager", "GetSecretValue", None),
        ],
    ),
    (
        "sweep-pending",
        &[
            ("dynamodb", "Query", None),
            ("dynamodb", "UpdateItem", None),
            ("eventbridge", "PutEvents", None),
        ],
    ),
];

/// Each port a handler's `main.rs` asks `Wiring` for: the adapter file and type that
/// `wiring.rs` builds for it, and the SDK operations that adapter calls.
type Port = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);
const PORTS: [Port; 7] = [
    (
        "orders",
        "dynamodb.rs",
        "DynamoOrderStore",
        &[
            ("dynamodb", "GetItem"),
            ("dynamodb", "PutItem"),
            ("dynamodb", "TransactWriteItems"),
        ],
    ),
    (
        "due_index",
        "dynamodb.rs",
        "DynamoOrderStore",
        &[("dynamodb", "Query")],
    ),
    (
        "sweep_index",
        "dynamodb.rs",
        "DynamoOrderStore",
        &[("dynamodb", "Query"), ("dynamodb", "UpdateItem")],
    ),
    (
        "bus",
        "eventbridge.rs",
        "EventBridgePublisher",
        &[("eventbridge", "PutEvents")],
    ),
    (
        "scheduler",
        "scheduler.rs",
        "EventBridgeScheduler",
        &[("scheduler", "CreateSchedule")],
    ),
    ("results", "s3.rs", "S3Results", &[("s3", "PutObject")]),
    (
        "slack",
        "slack.rs",
        "CachedSecret",
        &[("secretsmanager", "GetSecretValue")],
    ),
];

/// SDK use in a handler's `main.rs` outside `Wiring`: (binary, what its code says, the call it
/// makes, the template condition under which it is made).
const DIRECT_SDK_CALLS: [(&str, &str, (&str, &str), &str); 1] = [(
    "evaluate-order",
    "SecretsClient::new",
    ("secretsmanager", "GetSecretValue"),
    "HasPlatformKey",
)];

/// The SDK client each adapter file in `crates/aws/src` holds.
const ADAPTER_FILES: [(&str, &str); 5] = [
    ("dynamodb.rs", "dynamodb"),
    ("eventbridge.rs", "eventbridge"),
    ("scheduler.rs", "scheduler"),
    ("s3.rs", "s3"),
    ("slack.rs", "secretsmanager"),
];

/// The IAM actions an SDK call needs (Service Authorization Reference). A `Put` inside
/// `TransactWriteItems` is authorized as `dynamodb:PutItem` (DynamoDB developer guide, "Using
/// IAM with DynamoDB transactions"; our only transaction holds `Put`s, checked below);
/// `CreateSchedule` with a target role needs `iam:PassRole` on that role.
const SDK_CALL_PERMISSIONS: [((&str, &str), &[&str]); 9] = [
    (("dynamodb", "GetItem"), &["dynamodb:GetItem"]),
    (("dynamodb", "PutItem"), &["dynamodb:PutItem"]),
    (("dynamodb", "UpdateItem"), &["dynamodb:UpdateItem"]),
    (("dynamodb", "Query"), &["dynamodb:Query"]),
    (("dynamodb", "TransactWriteItems"), &["dynamodb:PutItem"]),
    (("eventbridge", "PutEvents"), &["events:PutEvents"]),
    (
        ("scheduler", "CreateSchedule"),
        &["scheduler:CreateSchedule", "iam:PassRole"],
    ),
    (("s3", "PutObject"), &["s3:PutObject"]),
    (
        ("secretsmanager", "GetSecretValue"),
        &["secretsmanager:GetSecretValue"],
    ),
];

/// What a SAM policy template grants (samtranslator/policy_templates_data/policy_templates.json,
/// "AWS SAM policy templates" in the SAM developer guide). A template the functions use that is
/// not here fails the test: add what it grants.
const SAM_POLICY_TEMPLATES: [(&str, &[&str]); 6] = [
    ("EventBridgePutEventsPolicy", &["events:PutEvents"]),
    (
        "DynamoDBCrudPolicy",
        &[
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
            "dynamodb:PutItem",
            "dynamodb:Scan",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:BatchGetItem",
            "dynamodb:DescribeTable",
            "dynamodb:ConditionCheckItem",
        ],
    ),
    (
        "DynamoDBReadPolicy",
        &[
            "dynamodb:GetItem",
            "dynamodb:Scan",
            "dynamodb:Query",
            "dynamodb:BatchGetItem",
            "dynamodb:DescribeTable",
        ],
    ),
    (
        "DynamoDBWritePolicy",
        &[
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
        ],
    ),
    (
        "AWSSecretsManagerGetSecretValuePolicy",
        &["secretsmanager:GetSecretValue"],
    ),
    (
        "S3WritePolicy",
        &[
            "s3:PutObject",
            "s3:PutObjectAcl",
            "s3:PutLifecycleConfiguration",
        ],
    ),
];

/// Which way a permission and the code disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mismatch {
    /// The code makes a call its function's policies do not grant.
    NotGranted,
    /// A policy grants an action the function's code never needs.
    NeverUsed,
}

/// Disagreements between the policies and the code known today, each with why, until the
/// template is fixed: (binary, action, which way, why). The test fails if one is fixed (so the
/// entry goes) or if another appears.
const KNOWN_MISMATCHES: [(&str, &str, Mismatch, &str); 0] = [];

// ---------------------------------------------------------------- reading the template

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// A YAML document in CloudFormation's JSON form, its tags kept as intrinsic functions.
mod cfn {
    use std::fmt;

    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value, json};

    pub struct Cfn(pub Value);

    /// A node without its tag.
    struct Untagged(Value);

    impl<'de> Deserialize<'de> for Cfn {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let serde_saphyr::Tagged(Untagged(value), tag) =
                serde_saphyr::Tagged::<Untagged>::deserialize(d)?;
            Ok(Cfn(match tag {
                Some(tag) => intrinsic(&tag, value),
                None => value,
            }))
        }
    }

    /// `!Ref X` → `{"Ref": "X"}`, `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`, `!Condition C`
    /// → `{"Condition": "C"}`, any other `!Name v` → `{"Fn::Name": v}`; YAML's own tags (`!!str`)
    /// change nothing.
    fn intrinsic(tag: &str, value: Value) -> Value {
        let Some(name) = tag.strip_prefix('!').filter(|n| !n.starts_with('!')) else {
            return value;
        };
        match (name, value) {
            ("Ref", v) => json!({ "Ref": v }),
            ("Condition", v) => json!({ "Condition": v }),
            ("GetAtt", Value::String(s)) => {
                let (resource, attribute) = s.split_once('.').unwrap_or((s.as_str(), ""));
                json!({ "Fn::GetAtt": [resource, attribute] })
            }
            (name, v) => json!({ format!("Fn::{name}"): v }),
        }
    }

    impl<'de> Deserialize<'de> for Untagged {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(UntaggedVisitor)
        }
    }

    struct UntaggedVisitor;

    impl<'de> Visitor<'de> for UntaggedVisitor {
        type Value = Untagged;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a YAML node")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Untagged, E> {
            Ok(Untagged(Value::Bool(v)))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Untagged, E> {
            Ok(Untagged(v.into()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Untagged, E> {
            Ok(Untagged(v.into()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Untagged, E> {
            Ok(Untagged(json!(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Untagged, E> {
            Ok(Untagged(v.into()))
        }
        fn visit_string<E>(self, v: String) -> Result<Untagged, E> {
            Ok(Untagged(v.into()))
        }
        fn visit_unit<E>(self) -> Result<Untagged, E> {
            Ok(Untagged(Value::Null))
        }
        fn visit_none<E>(self) -> Result<Untagged, E> {
            Ok(Untagged(Value::Null))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Untagged, A::Error> {
            let mut out = Vec::new();
            while let Some(Cfn(v)) = seq.next_element::<Cfn>()? {
                out.push(v);
            }
            Ok(Untagged(Value::Array(out)))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Untagged, A::Error> {
            let mut out = Map::new();
            while let Some((k, Cfn(v))) = map.next_entry::<String, Cfn>()? {
                out.insert(k, v);
            }
            Ok(Untagged(Value::Object(out)))
        }
    }
}

fn parse_cfn(text: &str) -> Value {
    let cfn::Cfn(value) = serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("YAML: {e}"));
    value
}

fn template() -> Value {
    parse_cfn(&read("template.yaml"))
}

fn reference(name: &str) -> Value {
    json!({ "Ref": name })
}

fn arn_of(logical_id: &str) -> Value {
    json!({ "Fn::GetAtt": [logical_id, "Arn"] })
}

fn resources(t: &Value) -> &serde_json::Map<String, Value> {
    t["Resources"].as_object().expect("Resources")
}

fn binary_of(logical_id: &str) -> &'static str {
    FUNCTIONS
        .iter()
        .find(|(l, _)| *l == logical_id)
        .map(|(_, b)| *b)
        .unwrap_or_else(|| panic!("{logical_id} is not in FUNCTIONS"))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// Every event source of the template by name: each function's `Events` (any type) and each
/// `AWS::Events::Rule` resource, as `{"On": where, "Type": type, "Properties": properties}`.
fn template_event_sources(t: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (logical_id, resource) in resources(t) {
        let found: Vec<(String, Value)> = match resource["Type"].as_str() {
            Some("AWS::Serverless::Function") => resource["Properties"]["Events"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, event)| {
                    let entry = json!({
                        "On": logical_id,
                        "Type": event["Type"],
                        "Properties": event["Properties"],
                    });
                    (name.clone(), entry)
                })
                .collect(),
            Some("AWS::Events::Rule") => vec![(
                logical_id.clone(),
                json!({
                    "On": resource["Properties"]["Targets"],
                    "Type": "AWS::Events::Rule",
                    "Properties": resource["Properties"],
                }),
            )],
            _ => Vec::new(),
        };
        for (name, entry) in found {
            assert!(
                out.insert(name.clone(), entry).is_none(),
                "two event sources are named {name}"
            );
        }
    }
    out
}

/// Every event source as the tables above say it must be.
fn expected_event_sources() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in rules() {
        out.insert(
            r.name.to_string(),
            json!({
                "On": r.target,
                "Type": "EventBridgeRule",
                "Properties": {
                    "EventBusName": reference("EventBus"),
                    "Pattern": r.pattern,
                    "RetryPolicy": {
                        "MaximumRetryAttempts": r.max_retry_attempts,
                        "MaximumEventAgeInSeconds": r.max_event_age_seconds,
                    },
                    "DeadLetterConfig": {"Arn": arn_of(r.dead_letter_queue)},
                },
            }),
        );
    }
    out.insert(
        SWEEP_EVENT.to_string(),
        json!({
            "On": SWEEP_FUNCTION,
            "Type": "Schedule",
            "Properties": {
                "Name": {"Fn::Sub": SWEEP_RULE_NAME},
                "Schedule": reference(SWEEP_PARAMETER),
                "RetryPolicy": {
                    "MaximumRetryAttempts": SWEEP_RETRIES,
                    "MaximumEventAgeInSeconds": SWEEP_MAX_AGE_SECONDS,
                },
                "DeadLetterConfig": {"Arn": arn_of(SWEEP_DLQ)},
            },
        }),
    );
    out
}

// ---------------------------------------------------------------- routing

#[test]
fn the_template_reader_keeps_cloudformation_tags() {
    let v = parse_cfn(
        "a: !Ref X\nb: X\nc: !GetAtt Q.Arn\nd: !Sub \"${X}/*\"\ne: !If [C, 1, !Ref AWS::NoValue]\nf: !!str 5\n",
    );
    assert_eq!(
        v,
        json!({
            "a": {"Ref": "X"},
            "b": "X",
            "c": {"Fn::GetAtt": ["Q", "Arn"]},
            "d": {"Fn::Sub": "${X}/*"},
            "e": {"Fn::If": ["C", 1, {"Ref": "AWS::NoValue"}]},
            "f": "5",
        })
    );
}

#[test]
fn the_template_has_exactly_the_rules_written_here_with_whole_patterns_targets_retries_and_dlqs() {
    let t = template();
    let found = template_event_sources(&t);
    let expected = expected_event_sources();
    for (name, want) in &expected {
        assert_eq!(
            found.get(name),
            Some(want),
            "rule {name}: the template differs from the table"
        );
    }
    let unexpected: Vec<&String> = found
        .keys()
        .filter(|n| !expected.contains_key(*n))
        .collect();
    assert!(
        unexpected.is_empty(),
        "event sources the table does not know: {unexpected:?}"
    );
    assert_eq!(found, expected);

    // Every dead-letter queue is a queue, and EventBridge may send to exactly these.
    let mut queues: BTreeSet<&str> = rules().iter().map(|r| r.dead_letter_queue).collect();
    queues.insert(SWEEP_DLQ);
    for q in &queues {
        assert_eq!(resources(&t)[*q]["Type"], "AWS::SQS::Queue", "{q}");
    }
    let policy = &resources(&t)["DeadLetterQueuePolicy"]["Properties"];
    let texts = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .expect("a list")
            .iter()
            .map(Value::to_string)
            .collect()
    };
    let wanted: BTreeSet<String> = queues.iter().map(|q| arn_of(q).to_string()).collect();
    assert_eq!(
        texts(&policy["PolicyDocument"]["Statement"][0]["Resource"]),
        wanted,
        "DeadLetterQueuePolicy's resources"
    );
    let listed = texts(&policy["Queues"]);
    let wanted: BTreeSet<String> = queues.iter().map(|q| reference(q).to_string()).collect();
    assert_eq!(listed, wanted, "DeadLetterQueuePolicy's queues");
}

#[test]
fn the_local_bus_routes_exactly_as_the_rule_and_invoke_tables_say() {
    let topology = Topology::embedded().unwrap();
    let found: BTreeMap<String, (Value, String, u32, SignedDuration)> = topology
        .rules
        .iter()
        .map(|r| {
            let [t] = &r.targets[..] else {
                panic!("{}: {:?}", r.name, r.targets)
            };
            let target = match &t.target {
                Target::Function(f) => f.name().to_string(),
                other => panic!("{}: {other:?}", r.name),
            };
            (
                r.name.clone(),
                (
                    r.pattern_json.clone(),
                    target,
                    t.policy.max_retries,
                    t.policy.max_age,
                ),
            )
        })
        .collect();
    let expected: BTreeMap<String, (Value, String, u32, SignedDuration)> = rules()
        .into_iter()
        .map(|r| {
            (
                r.name.to_string(),
                (
                    r.pattern,
                    binary_of(r.target).to_string(),
                    r.max_retry_attempts as u32,
                    SignedDuration::from_secs(r.max_event_age_seconds as i64),
                ),
            )
        })
        .collect();
    assert_eq!(found, expected);

    for f in Function::ALL {
        let spec = INVOKE
            .iter()
            .find(|s| binary_of(s.function) == f.name())
            .unwrap_or_else(|| panic!("{} is not in INVOKE", f.name()));
        let invoke = topology.invoke(f);
        // Lambda retries an asynchronous invocation twice unless told otherwise.
        assert_eq!(
            invoke.max_retries as u64,
            spec.maximum_retry_attempts.unwrap_or(2),
            "{}",
            f.name()
        );
        let to_bus = spec
            .on_failure
            .as_ref()
            .is_some_and(|d| d.kind == "EventBridge" && d.arn_of == "EventBus");
        assert_eq!(invoke.on_failure_to_bus, to_bus, "{}", f.name());
    }

    let sweep = topology.sweep.clone().expect("the sweep schedule");
    assert_eq!(sweep.name, SWEEP_EVENT);
    assert_eq!(sweep.target.name(), binary_of(SWEEP_FUNCTION));
    assert_eq!(sweep.every, SignedDuration::from_mins(2), "{SWEEP_DEFAULT}");
    assert_eq!(sweep.policy.max_retries as u64, SWEEP_RETRIES);
    assert_eq!(
        sweep.policy.max_age,
        SignedDuration::from_secs(SWEEP_MAX_AGE_SECONDS as i64)
    );
}

#[test]
fn every_function_has_exactly_the_event_invoke_config_written_here() {
    let t = template();
    assert!(
        t["Globals"]["Function"].get("EventInvokeConfig").is_none(),
        "an EventInvokeConfig in Globals applies to every function: write it per function"
    );
    for spec in &INVOKE {
        let destination =
            |d: &Destination| json!({"Type": d.kind, "Destination": arn_of(d.arn_of)});
        let mut want = serde_json::Map::new();
        if let Some(n) = spec.maximum_retry_attempts {
            want.insert("MaximumRetryAttempts".into(), json!(n));
        }
        if let Some(n) = spec.maximum_event_age_seconds {
            want.insert("MaximumEventAgeInSeconds".into(), json!(n));
        }
        let mut destinations = serde_json::Map::new();
        if let Some(d) = &spec.on_failure {
            destinations.insert("OnFailure".into(), destination(d));
        }
        if let Some(d) = &spec.on_success {
            destinations.insert("OnSuccess".into(), destination(d));
        }
        if !destinations.is_empty() {
            want.insert("DestinationConfig".into(), Value::Object(destinations));
        }
        let want = if want.is_empty() {
            None
        } else {
            Some(Value::Object(want))
        };
        let found = resources(&t)[spec.function]["Properties"]
            .get("EventInvokeConfig")
            .cloned();
        assert_eq!(found, want, "{}'s EventInvokeConfig", spec.function);
    }
}

#[test]
fn the_sweeper_runs_on_ref_sweep_schedule_whose_default_is_every_two_minutes() {
    let t = template();
    let sweep = &resources(&t)[SWEEP_FUNCTION]["Properties"]["Events"][SWEEP_EVENT];
    assert_eq!(sweep["Type"], "Schedule");
    // The tag, not only the name: a plain `Schedule: SweepSchedule` is no schedule expression.
    assert_eq!(
        sweep["Properties"]["Schedule"],
        json!({"Ref": "SweepSchedule"})
    );
    let parameter = &t["Parameters"][SWEEP_PARAMETER];
    assert_eq!(parameter["Type"], "String");
    assert_eq!(parameter["Default"], "rate(2 minutes)");
    assert_eq!(parameter["Default"], SWEEP_DEFAULT);
}

#[test]
fn every_function_builds_a_handler_crate_and_every_rule_targets_a_function() {
    let t = template();
    let resources = resources(&t);
    let mut functions = BTreeMap::new();
    for (name, resource) in resources {
        if resource["Type"] == "AWS::Serverless::Function" {
            let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} names no binary"));
            assert_eq!(
                resource["Metadata"]["BuildMethod"], "rust-cargolambda",
                "{name}"
            );
            assert!(
                root()
                    .join("handlers")
                    .join(binary)
                    .join("src/main.rs")
                    .exists(),
                "{name} builds {binary}, which has no main.rs"
            );
            functions.insert(name.as_str(), binary);
        }
        if resource["Type"] == "AWS::Events::Rule" {
            for target in resource["Properties"]["Targets"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let logical = target["Arn"]["Fn::GetAtt"][0].as_str().unwrap_or_default();
                assert!(
                    resources.contains_key(logical),
                    "rule {name} targets {}",
                    target["Arn"]
                );
            }
        }
    }
    let expected: BTreeMap<&str, &str> = FUNCTIONS.iter().copied().collect();
    assert_eq!(functions, expected);
    for r in rules() {
        assert_eq!(
            resources[r.target]["Type"], "AWS::Serverless::Function",
            "{}",
            r.name
        );
    }
}

// ---------------------------------------------------------------- events and schemas

/// The rules of the template (EventBridgeRule events): name → pattern.
fn template_patterns(t: &Value) -> BTreeMap<String, Value> {
    template_event_sources(t)
        .into_iter()
        .filter(|(_, e)| e["Type"] == "EventBridgeRule")
        .map(|(name, e)| (name, e["Properties"]["Pattern"].clone()))
        .collect()
}

#[test]
fn every_consumed_detail_type_of_ours_has_a_schema_and_every_schema_but_the_hook_has_a_consumer() {
    let schemas = root().join("events-schema");
    let mut consumed: Vec<String> = template_patterns(&template())
        .into_values()
        .filter(|p| strings(&p["source"]) == ["energy.orders"])
        .flat_map(|p| strings(&p["detail-type"]))
        .collect();
    consumed.sort();
    for t in &consumed {
        assert!(
            schemas.join(format!("{t}.json")).exists(),
            "a rule selects {t}, which has no schema"
        );
        let example: Value = serde_json::from_str(
            &std::fs::read_to_string(schemas.join(format!("examples/{t}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(example["source"], "energy.orders");
    }
    let mut all: Vec<String> = energy_core::events::DomainEvent::DETAIL_TYPES
        .iter()
        .map(|s| s.to_string())
        .collect();
    // The hooks: events for desks to subscribe to, with no consumer of ours.
    all.retain(|t| {
        !matches!(
            t.as_str(),
            "OrderResultStored" | "OrderCancelled" | "OrderPreliminaryResult"
        )
    });
    all.sort();
    assert_eq!(consumed, all);
}

#[test]
fn the_registry_schemas_in_the_template_equal_the_files_in_events_schema() {
    let t = template();
    let mut in_template = BTreeMap::new();
    for resource in resources(&t).values() {
        if resource["Type"] == "AWS::EventSchemas::Schema" {
            let props = &resource["Properties"];
            assert_eq!(props["Type"], "JSONSchemaDraft4");
            let name = props["SchemaName"]
                .as_str()
                .unwrap()
                .trim_start_matches("energy.orders@")
                .to_string();
            let content: Value = serde_json::from_str(props["Content"].as_str().unwrap()).unwrap();
            in_template.insert(name, content);
        }
    }
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("events-schema")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let content: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            files.insert(
                path.file_stem().unwrap().to_string_lossy().into_owned(),
                content,
            );
        }
    }
    assert_eq!(
        in_template, files,
        "run scripts/sync-template-schemas after changing a schema"
    );
}

/// Every detail-type our handlers put on the bus, written out.
const EMITTED: [&str; 10] = [
    "OrderAmended",
    "OrderChangeRefused",
    "OrderCancelled",
    "OrderChecksDue",
    "OrderEvaluationDue",
    "OrderFailed",
    "OrderPreliminaryResult",
    "OrderReady",
    "OrderResultStored",
    "OrderSubmitted",
];

/// The detail-type of each kind of event; a new kind does not compile until it is named here.
fn written_name(kind: DetailType) -> &'static str {
    match kind {
        DetailType::Submitted => "OrderSubmitted",
        DetailType::EvaluationDue => "OrderEvaluationDue",
        DetailType::Ready => "OrderReady",
        DetailType::Failed => "OrderFailed",
        DetailType::ResultStored => "OrderResultStored",
        DetailType::Cancelled => "OrderCancelled",
        DetailType::Amended => "OrderAmended",
        DetailType::PreliminaryResult => "OrderPreliminaryResult",
        DetailType::ChangeRefused => "OrderChangeRefused",
        DetailType::ChecksDue => "OrderChecksDue",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_detail_type_the_handlers_put_on_the_bus_is_written_here_and_has_its_schema() {
    // What the code can publish: `EventPublisher::publish` takes `DomainEvent`s, whose
    // detail-types are `DetailType`'s names.
    let kinds: BTreeSet<&str> = DetailType::ALL.iter().map(|k| k.name()).collect();
    for kind in DetailType::ALL {
        assert_eq!(kind.name(), written_name(kind));
    }
    assert_eq!(kinds, EMITTED.into_iter().collect());

    // What the handlers do publish: a whole run of the choreography (`energy demo`: every
    // outcome, on `energy up`'s stack with the real handlers), every event it archived.
    let report = energy_local::demo::run(energy_local::demo::DemoOptions::default(), |_| {})
        .await
        .expect("the demo runs");
    let mut ours = BTreeSet::new();
    let mut others = BTreeSet::new();
    for event in &report.archive {
        let source = event["source"].as_str().unwrap_or_default().to_string();
        let detail_type = event["detail-type"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if source == "energy.orders" {
            let (name, problems) = schema_problems(event);
            assert!(
                problems.is_empty(),
                "{name} on the bus does not match its schema: {problems:?}\n{event}"
            );
            ours.insert(detail_type);
        } else {
            others.insert((source, detail_type));
        }
    }
    let emitted: BTreeSet<String> = EMITTED.iter().map(|s| s.to_string()).collect();
    assert_eq!(ours, emitted, "the detail-types of a whole run");
    assert!(
        others.is_empty(),
        "events of other sources on the bus: {others:?}"
    );

    for name in EMITTED {
        let schema: Value = serde_json::from_str(&read(&format!("events-schema/{name}.json")))
            .unwrap_or_else(|e| panic!("{name} is emitted but has no readable schema: {e}"));
        assert_eq!(
            schema["properties"]["detail-type"]["enum"],
            json!([name]),
            "{name}"
        );
        assert_eq!(
            schema["properties"]["source"]["enum"],
            json!(["energy.orders"]),
            "{name}"
        );
    }
}

/// The event's detail-type and what its schema in `events-schema/` finds wrong with it.
fn schema_problems(event: &Value) -> (String, Vec<String>) {
    let name = event["detail-type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let schema: Value = serde_json::from_str(&read(&format!("events-schema/{name}.json")))
        .unwrap_or_else(|e| panic!("{name} has no readable schema: {e}"));
    let validator = jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema {name}: {e}"));
    let problems = validator
        .iter_errors(event)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    (name, problems)
}

/// Events of AWS services the rules select, as the services document them (Lambda's
/// on-failure destination record; CodePipeline's execution state change).
fn aws_events() -> Vec<(&'static str, Value)> {
    let envelope = |source: &str, detail_type: &str, detail: Value| {
        json!({
            "version": "0", "id": "0b2a2bd9-8d5e-4c3c-a3bb-0ad2e2a7a7f1", "detail-type": detail_type,
            "source": source, "account": "123456789012", "time": "2026-01-14T12:00:00Z",
            "region": "eu-west-1", "resources": [], "detail": detail
        })
    };
    vec![
        (
            "lambda on-failure record",
            envelope(
                "lambda",
                "Lambda Function Invocation Result - Failure",
                json!({
                    "version": "1.0",
                    "requestContext": {
                        "requestId": "c8f0a7a4-1a84-4c41-9c4a-2f1e7e6bb0d5",
                        "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:energy-evaluate:$LATEST",
                        "condition": "RetriesExhausted",
                        "approximateInvokeCount": 3
                    },
                    "requestPayload": {},
                    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                    "responsePayload": {"errorType": "Error", "errorMessage": "boom"}
                }),
            ),
        ),
        (
            "codepipeline FAILED",
            envelope(
                "aws.codepipeline",
                "CodePipeline Pipeline Execution State Change",
                json!({"pipeline": "energy", "execution-id": "e1", "state": "FAILED", "version": 1.0}),
            ),
        ),
        (
            "codepipeline SUCCEEDED",
            envelope(
                "aws.codepipeline",
                "CodePipeline Pipeline Execution State Change",
                json!({"pipeline": "energy", "execution-id": "e2", "state": "SUCCEEDED", "version": 1.0}),
            ),
        ),
        (
            "our detail-type from another source",
            envelope("energy.other", "OrderFailed", json!({})),
        ),
    ]
}

/// Which events each rule selects, of the schema examples and the AWS events above; each
/// selects no other.
const RULE_SELECTS: [(&str, &[&str]); 5] = [
    (
        "EvaluateOrderRule",
        &[
            "OrderAmended.json",
            "OrderChecksDue.continued.json",
            "OrderChecksDue.json",
            "OrderEvaluationDue.json",
            "OrderSubmitted.json",
        ],
    ),
    (
        "StoreResultRule",
        &["OrderReady.json", "OrderReady.rejected.json"],
    ),
    (
        "NotifySlackRule",
        &[
            "OrderChangeRefused.json",
            "OrderFailed.json",
            "OrderFailed.rejected.json",
        ],
    ),
    ("ProcessingErrorRule", &["lambda on-failure record"]),
    ("PipelineFailedRule", &["codepipeline FAILED"]),
];

#[test]
fn each_rule_selects_exactly_the_events_written_here() {
    let patterns = template_patterns(&template());
    let mut events: Vec<(String, Value)> = std::fs::read_dir(root().join("events-schema/examples"))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap(),
            )
        })
        .collect();
    events.extend(aws_events().into_iter().map(|(n, e)| (n.to_string(), e)));
    let names: BTreeSet<&str> = RULE_SELECTS.iter().map(|(r, _)| *r).collect();
    assert_eq!(
        patterns.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        names
    );
    for (rule, selects) in RULE_SELECTS {
        let compiled = Pattern::compile(&patterns[rule]).unwrap();
        for wanted in selects {
            assert!(
                events.iter().any(|(n, _)| n == wanted),
                "{rule}: no event {wanted}"
            );
        }
        for (name, event) in &events {
            assert_eq!(
                compiled.matches(event),
                selects.contains(&name.as_str()),
                "{rule} and {name}"
            );
        }
    }
}

// ---------------------------------------------------------------- policies

/// Every policy statement of the template: (resource, statement).
fn statements(t: &Value) -> Vec<(String, Value)> {
    fn walk(owner: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) if m.contains_key("Effect") => {
                out.push((owner.to_string(), v.clone()))
            }
            Value::Object(m) => m.values().for_each(|x| walk(owner, x, out)),
            Value::Array(a) => a.iter().for_each(|x| walk(owner, x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (name, resource) in resources(t) {
        walk(name, resource, &mut out);
    }
    out
}

/// The strings of a policy field: plain, `Fn::Sub` templates, in lists and principal maps.
fn field_strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(field_strings).collect(),
        Value::Object(m) => match m.get("Fn::Sub") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.first().map(field_strings).unwrap_or_default(),
            _ => m.values().flat_map(field_strings).collect(),
        },
        _ => Vec::new(),
    }
}

#[test]
fn every_wildcard_in_a_policy_is_on_the_allow_list_with_its_reason() {
    let t = template();
    let mut found = BTreeSet::new();
    for (owner, statement) in statements(&t) {
        let effect = statement["Effect"].as_str().unwrap_or_default().to_string();
        let actions = field_strings(&statement["Action"]).join(",");
        for field in [
            "Action",
            "NotAction",
            "Principal",
            "NotPrincipal",
            "Resource",
            "NotResource",
        ] {
            for s in field_strings(&statement[field]) {
                if s.contains('*') {
                    found.insert((
                        owner.clone(),
                        effect.clone(),
                        actions.clone(),
                        field.to_string(),
                        s,
                    ));
                }
            }
        }
    }
    let allowed: BTreeSet<(String, String, String, String, String)> = ALLOWED_WILDCARDS
        .iter()
        .map(|(owner, effect, actions, field, value, reason)| {
            assert!(!reason.is_empty());
            // Nothing on the list may allow every action or every resource, but in a key
            // policy, where "*" is the key itself and the root statement hands the key to IAM.
            let key_policy = resources(&t)[*owner]["Type"] == "AWS::KMS::Key";
            if *effect == "Allow" && !key_policy {
                assert!(
                    *value != "*" && !value.ends_with(":*"),
                    "{owner}: an Allow of {field} {value}"
                );
            }
            (
                owner.to_string(),
                effect.to_string(),
                actions.to_string(),
                field.to_string(),
                value.to_string(),
            )
        })
        .collect();
    let unlisted: Vec<_> = found.difference(&allowed).collect();
    assert!(
        unlisted.is_empty(),
        "wildcards not on ALLOWED_WILDCARDS: {unlisted:#?}"
    );
    let gone: Vec<_> = allowed.difference(&found).collect();
    assert!(
        gone.is_empty(),
        "ALLOWED_WILDCARDS lists wildcards the template no longer has: {gone:#?}"
    );
}

/// `.client.<op>()` calls in Rust source, as SDK operation names (`put_item` → `PutItem`).
fn sdk_operations(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .flat_map(str::chars)
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices(".client.") {
        let rest = &code[i + ".client.".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
            .collect();
        if !name.is_empty() && rest[name.len()..].starts_with("()") {
            out.insert(
                name.split('_')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                            .unwrap_or_default()
                    })
                    .collect(),
            );
        }
    }
    out
}

/// The block `{ .. }` that follows the first `header` in `source`.
fn block_after<'a>(source: &'a str, header: &str) -> &'a str {
    let start = source
        .find(header)
        .unwrap_or_else(|| panic!("no {header:?}"));
    let open = start + source[start..].find('{').expect("a block");
    let mut depth = 0;
    for (i, c) in source[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &source[open..=open + i];
                }
            }
            _ => {}
        }
    }
    panic!("{header:?}: unclosed block")
}

fn ops(list: &[(&str, &str)]) -> BTreeSet<String> {
    list.iter().map(|(_, op)| op.to_string()).collect()
}

#[test]
fn the_sdk_call_table_is_what_the_code_calls() {
    // Each adapter file calls exactly the operations of the ports built from it.
    let src = root().join("crates/aws/src");
    let mut in_code: BTreeSet<(String, String)> = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        assert!(path.is_file(), "{}: look into it too", path.display());
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let found = sdk_operations(&std::fs::read_to_string(&path).unwrap());
        let Some((_, sdk)) = ADAPTER_FILES.iter().find(|(f, _)| *f == file) else {
            assert!(
                found.is_empty(),
                "{file} calls {found:?}: add it to ADAPTER_FILES"
            );
            continue;
        };
        let wanted: BTreeSet<String> = PORTS
            .iter()
            .filter(|p| p.1 == file)
            .flat_map(|p| ops(p.3))
            .collect();
        assert_eq!(found, wanted, "{file}");
        in_code.extend(found.into_iter().map(|op| (sdk.to_string(), op)));
    }
    // PORTS[0] is the orders port, PORTS[1] the due index, PORTS[2] the due index with the
    // sweeper's claim: all on DynamoOrderStore.
    let dynamodb = std::fs::read_to_string(src.join("dynamodb.rs")).unwrap();
    let due = block_after(&dynamodb, "impl DueIndex for DynamoOrderStore");
    assert_eq!(sdk_operations(due), ops(PORTS[1].3), "the DueIndex adapter");
    let claims = block_after(&dynamodb, "impl SweepClaims for DynamoOrderStore");
    let with_claims: BTreeSet<String> = sdk_operations(due)
        .union(&sdk_operations(claims))
        .cloned()
        .collect();
    assert_eq!(with_claims, ops(PORTS[2].3), "the SweepClaims adapter");
    assert_eq!(
        sdk_operations(&dynamodb.replace(due, "").replace(claims, "")),
        ops(PORTS[0].3),
        "the OrderStore adapter"
    );
    // TransactWriteItems is authorized per item: ours holds Puts only.
    let compact: String = dynamodb.chars().filter(|c| !c.is_whitespace()).collect();
    let items: Vec<&str> = compact
        .match_indices("TransactWriteItem::builder().")
        .map(|(i, m)| &compact[i + m.len()..])
        .collect();
    assert!(!items.is_empty());
    for item in items {
        assert!(
            item.starts_with("put("),
            "a transaction item that is not a Put"
        );
    }

    // Wiring builds each port from the adapter named in PORTS.
    let wiring = std::fs::read_to_string(src.join("wiring.rs")).unwrap();
    for (port, _, adapter, _) in PORTS {
        let body = block_after(&wiring, &format!("pub fn {port}("));
        assert!(body.contains(adapter), "Wiring::{port} builds no {adapter}");
    }

    // Each handler's calls: the ports its main.rs asks Wiring for, and its own SDK use.
    let mut union: BTreeSet<(String, String)> = BTreeSet::new();
    for (binary, calls) in FUNCTION_SDK_CALLS {
        let dir = root().join("handlers").join(binary).join("src");
        let main = std::fs::read_to_string(dir.join("main.rs")).unwrap();
        let compact: String = main.chars().filter(|c| !c.is_whitespace()).collect();
        let mut derived: BTreeSet<Call> = BTreeSet::new();
        for (i, _) in compact.match_indices("wiring.") {
            let name: String = compact[i + "wiring.".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if ["clock", "env", "sdk"].contains(&name.as_str()) {
                continue;
            }
            let port = PORTS
                .iter()
                .find(|p| p.0 == name)
                .unwrap_or_else(|| panic!("{binary} wires {name}, which PORTS does not know"));
            derived.extend(port.3.iter().map(|(sdk, op)| (*sdk, *op, None)));
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert!(path.is_file(), "{}: look into it too", path.display());
            let text = std::fs::read_to_string(&path).unwrap();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let direct: Vec<_> = DIRECT_SDK_CALLS
                .iter()
                .filter(|d| d.0 == binary && file == "main.rs")
                .collect();
            for (_, needle, (sdk, op), condition) in &direct {
                assert!(text.contains(needle), "{binary}/{file}: no {needle}");
                derived.insert((*sdk, *op, Some(*condition)));
            }
            let mentions_sdk = text.contains("aws_sdk_") || text.contains("SecretsClient");
            assert_eq!(
                mentions_sdk,
                !direct.is_empty(),
                "{binary}/{file}: SDK use outside Wiring must be in DIRECT_SDK_CALLS"
            );
            assert!(sdk_operations(&text).is_empty(), "{binary}/{file}");
        }
        let listed: BTreeSet<Call> = calls.iter().copied().collect();
        assert_eq!(
            listed, derived,
            "{binary}: FUNCTION_SDK_CALLS against its code"
        );
        union.extend(calls.iter().map(|(s, o, _)| (s.to_string(), o.to_string())));
    }
    assert_eq!(
        union, in_code,
        "every call the table lists, and only those, is in the code"
    );
}

/// What a function's policies grant: (action, the condition it is granted under).
fn granted(function: &str, policies: &Value) -> BTreeSet<(String, Option<String>)> {
    fn collect(
        function: &str,
        p: &Value,
        condition: Option<String>,
        out: &mut BTreeSet<(String, Option<String>)>,
    ) {
        if let Some([c, yes, no]) = p.get("Fn::If").and_then(Value::as_array).map(Vec::as_slice) {
            let c = c.as_str().expect("a condition name");
            collect(function, yes, Some(c.to_string()), out);
            if *no != reference("AWS::NoValue") {
                collect(function, no, Some(format!("!{c}")), out);
            }
            return;
        }
        if let Some(statements) = p.get("Statement") {
            let statements = match statements {
                Value::Array(a) => a.clone(),
                one => vec![one.clone()],
            };
            for s in statements {
                // A Deny narrows what SAM grants besides (each_function_role_as_deployed_...).
                if s["Effect"] == "Deny" {
                    continue;
                }
                assert_eq!(s["Effect"], "Allow", "{function}: {s}");
                for action in strings(&s["Action"]) {
                    out.insert((action, condition.clone()));
                }
            }
            return;
        }
        if let Some(m) = p.as_object().filter(|m| m.len() == 1) {
            let name = m.keys().next().expect("one key");
            let (_, actions) = SAM_POLICY_TEMPLATES
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| {
                    panic!("{function}: SAM policy template {name}: add what it grants to SAM_POLICY_TEMPLATES")
                });
            for a in *actions {
                out.insert((a.to_string(), condition.clone()));
            }
            return;
        }
        panic!("{function}: a policy this test cannot read (a managed policy?): {p}");
    }
    let mut out = BTreeSet::new();
    for p in policies.as_array().into_iter().flatten() {
        collect(function, p, None, &mut out);
    }
    out
}

/// What a function's code needs: (action, the condition under which it makes the call).
fn needed(binary: &str) -> BTreeSet<(String, Option<String>)> {
    let (_, calls) = FUNCTION_SDK_CALLS
        .iter()
        .find(|(b, _)| *b == binary)
        .unwrap_or_else(|| panic!("{binary} is not in FUNCTION_SDK_CALLS"));
    let mut out = BTreeSet::new();
    for (sdk, op, condition) in *calls {
        let (_, actions) = SDK_CALL_PERMISSIONS
            .iter()
            .find(|(call, _)| *call == (*sdk, *op))
            .unwrap_or_else(|| panic!("{sdk} {op}: add its IAM actions to SDK_CALL_PERMISSIONS"));
        for a in *actions {
            out.insert((a.to_string(), condition.map(String::from)));
        }
    }
    out
}

#[test]
fn each_function_is_granted_exactly_the_actions_its_sdk_calls_need() {
    let t = template();
    assert!(
        t["Globals"]["Function"].get("Policies").is_none(),
        "policies in Globals apply to every function: write them per function"
    );
    let mut mismatches = BTreeSet::new();
    for (logical_id, binary) in FUNCTIONS {
        let granted = granted(
            logical_id,
            &resources(&t)[logical_id]["Properties"]["Policies"],
        );
        let needed = needed(binary);
        for (action, condition) in needed.difference(&granted) {
            mismatches.insert((
                binary,
                action.clone(),
                Mismatch::NotGranted,
                condition.clone(),
            ));
        }
        for (action, condition) in granted.difference(&needed) {
            mismatches.insert((
                binary,
                action.clone(),
                Mismatch::NeverUsed,
                condition.clone(),
            ));
        }
    }
    let found: BTreeSet<(String, String, Mismatch)> = mismatches
        .iter()
        .map(|(b, a, m, _)| (b.to_string(), a.clone(), *m))
        .collect();
    let known: BTreeSet<(String, String, Mismatch)> = KNOWN_MISMATCHES
        .iter()
        .map(|(b, a, m, reason)| {
            assert!(!reason.is_empty());
            (b.to_string(), a.to_string(), *m)
        })
        .collect();
    assert!(
        found.difference(&known).next().is_none(),
        "policies and code disagree (function, action, which way, condition): {:#?}",
        mismatches
            .iter()
            .filter(|(b, a, m, _)| !known.contains(&(b.to_string(), a.clone(), *m)))
            .collect::<Vec<_>>()
    );
    let fixed: Vec<_> = known.difference(&found).collect();
    assert!(
        fixed.is_empty(),
        "KNOWN_MISMATCHES lists what is no longer wrong; remove it: {fixed:#?}"
    );
}

// ---------------------------------------------------------------- a first real deploy

fn pipeline() -> Value {
    parse_cfn(&read("pipeline.yaml"))
}

/// Evaluates a `Rules` expression for one set of parameter values (the functions CloudFormation
/// allows in rules that the template uses; any other fails the test).
fn rule_value(v: &Value, params: &BTreeMap<String, Value>) -> Value {
    let o = v.as_object();
    if let Some(name) = o.and_then(|o| o.get("Ref")).and_then(Value::as_str) {
        return params
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("a rule refers to {name}, which has no value"));
    }
    let args = |f: &str| {
        o.and_then(|o| o.get(f))
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|x| rule_value(x, params)).collect::<Vec<_>>())
    };
    if let Some(a) = args("Fn::Equals") {
        // CloudFormation compares strings: a Number parameter's "0" equals a literal 0.
        let text = |v: &Value| match v {
            Value::Number(n) => n.to_string(),
            other => other
                .as_str()
                .map_or_else(|| other.to_string(), String::from),
        };
        return json!(text(&a[0]) == text(&a[1]));
    }
    if let Some(a) = args("Fn::Not") {
        return json!(a[0] != json!(true));
    }
    if let Some(a) = args("Fn::And") {
        return json!(a.iter().all(|x| *x == json!(true)));
    }
    if let Some(a) = args("Fn::Or") {
        return json!(a.contains(&json!(true)));
    }
    if let Some(a) = args("Fn::EachMemberEquals") {
        let list: Vec<String> = match &a[0] {
            Value::String(s) => s.split(',').map(String::from).collect(),
            other => strings(other),
        };
        return json!(list.iter().all(|m| json!(m) == a[1]));
    }
    if let Some(f) = o.and_then(|o| o.keys().find(|k| k.starts_with("Fn::"))) {
        panic!("rule function {f}: teach rule_value");
    }
    v.clone()
}

/// Every parameter's value: `overrides`, else `base`'s, else the template's default.
fn parameters(t: &Value, overrides: &[(&str, &str)], base: &Value) -> BTreeMap<String, Value> {
    let mut params: BTreeMap<String, Value> = BTreeMap::new();
    for (name, p) in t["Parameters"].as_object().unwrap() {
        let value = base
            .get(name)
            .or_else(|| p.get("Default"))
            .unwrap_or_else(|| panic!("no value for {name}"));
        params.insert(name.clone(), value.clone());
    }
    for (k, v) in overrides {
        params.insert(k.to_string(), json!(v));
    }
    params
}

/// The rules a stack with these parameters fails (CloudFormation refuses it before any change).
fn refused_by(t: &Value, overrides: &[(&str, &str)], base: &Value) -> BTreeSet<String> {
    let params = parameters(t, overrides, base);
    let mut refused = BTreeSet::new();
    for (name, rule) in t["Rules"].as_object().expect("Rules") {
        let applies = rule
            .get("RuleCondition")
            .is_none_or(|c| rule_value(c, &params) == json!(true));
        if !applies {
            continue;
        }
        for a in rule["Assertions"].as_array().unwrap() {
            assert!(
                a["AssertDescription"]
                    .as_str()
                    .is_some_and(|d| d.len() > 20)
            );
            if rule_value(&a["Assert"], &params) != json!(true) {
                refused.insert(name.clone());
            }
        }
    }
    refused
}

fn env_file(env: &str) -> Value {
    serde_json::from_str(&read(&format!("deploy/{env}.json"))).unwrap()
}

#[test]
fn a_stack_that_cannot_work_is_refused_by_the_template_rules_before_anything_is_created() {
    let t = template();
    let defaults = json!({});
    assert!(
        refused_by(&t, &[], &defaults).is_empty(),
        "the defaults deploy"
    );
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("AuthMode", "JWT"), ("JwtAudience", "desk")],
            "JwtNeedsAnIssuer",
        ),
        (
            &[("AuthMode", "JWT"), ("JwtIssuer", "https://idp.example/")],
            "JwtNeedsAnAudience",
        ),
        (&[("Platform", "http")], "HttpPlatformNeedsAUrl"),
        (
            &[("EnvironmentName", "prod"), ("AuthMode", "NONE")],
            "ProdIsAuthenticated",
        ),
        (&[("EnvironmentName", "dev"), ("AuthMode", "NONE")], ""),
    ];
    for (overrides, rule) in cases {
        let refused = refused_by(&t, overrides, &defaults);
        let want: BTreeSet<String> = [rule]
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| r.to_string())
            .collect();
        assert_eq!(refused, want, "{overrides:?}");
    }
    let ok = [
        ("AuthMode", "JWT"),
        ("JwtIssuer", "https://idp.example/"),
        ("JwtAudience", "desk,desk-2"),
        ("Platform", "http"),
        ("PlatformUrl", "https://platform.example/"),
        ("EnvironmentName", "prod"),
    ];
    assert!(refused_by(&t, &ok, &defaults).is_empty());
}

#[test]
fn each_environment_sets_every_parameter_from_the_repository_and_the_pipeline_passes_the_file() {
    let t = template();
    let names: BTreeSet<String> = t["Parameters"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for env in ["dev", "prod"] {
        let file = env_file(env);
        let params = file["Parameters"].as_object().expect("Parameters");
        let given: BTreeSet<String> = params.keys().cloned().collect();
        assert_eq!(
            given, names,
            "deploy/{env}.json names every parameter, no other"
        );
        assert_eq!(params["EnvironmentName"], env);
        for (k, v) in params {
            assert!(
                v.is_string(),
                "deploy/{env}.json: {k} must be a string (CloudFormation's form)"
            );
        }
    }
    // dev deploys as it is; prod only once the operator has filled in what is theirs.
    assert!(refused_by(&t, &[], &env_file("dev")["Parameters"]).is_empty());
    let prod = env_file("prod")["Parameters"].clone();
    assert_eq!(
        refused_by(&t, &[], &prod),
        BTreeSet::from([
            "HttpPlatformNeedsAUrl".to_string(),
            "JwtNeedsAnAudience".to_string(),
            "JwtNeedsAnIssuer".to_string()
        ]),
        "deploy/prod.json ships without the issuer, audience and platform URL the README asks for"
    );
    let filled = [
        ("JwtIssuer", "https://idp.example/"),
        ("JwtAudience", "desk"),
        ("PlatformUrl", "https://platform.example/"),
    ];
    assert!(refused_by(&t, &filled, &prod).is_empty());

    // The pipeline's deploy actions take every parameter from those files, which the build
    // packages with the template.
    let p = pipeline();
    let mut deployed = BTreeSet::new();
    for stage in p["Resources"]["Pipeline"]["Properties"]["Stages"]
        .as_array()
        .unwrap()
    {
        for action in stage["Actions"].as_array().unwrap() {
            if action["ActionTypeId"]["Provider"] != "CloudFormation" {
                continue;
            }
            let c = &action["Configuration"];
            assert!(
                c.get("ParameterOverrides").is_none(),
                "{c}: overrides reset nothing else but hide the file"
            );
            let stack = c["StackName"].as_str().unwrap();
            let env = stack.trim_start_matches("energy-");
            assert_eq!(
                c["TemplateConfiguration"],
                format!("Packaged::deploy/{env}.json")
            );
            deployed.insert(env.to_string());
        }
    }
    assert_eq!(
        deployed,
        BTreeSet::from(["dev".to_string(), "prod".to_string()])
    );
    // A manual deploy passes the same files (scripts/deploy), so samconfig.toml holds none.
    assert!(!read("samconfig.toml").contains("parameter_overrides ="));
    assert!(read("scripts/deploy").contains("deploy/$env.json"));
    let buildspec = read("buildspec.yaml");
    for env in ["dev", "prod"] {
        assert!(
            buildspec.contains(&format!("- deploy/{env}.json")),
            "buildspec packages deploy/{env}.json"
        );
    }
}

#[test]
fn alarms_reach_the_topic_under_a_key_cloudwatch_may_use() {
    let t = template();
    let r = resources(&t);
    let key_ref = &r["AlarmTopic"]["Properties"]["KmsMasterKeyId"];
    let key = key_ref["Ref"].as_str().unwrap_or_else(|| {
        panic!("AlarmTopic's key {key_ref}: an AWS-managed key (alias/aws/sns) cannot let CloudWatch publish")
    });
    assert_eq!(r[key]["Type"], "AWS::KMS::Key");
    assert_eq!(r[key]["Properties"]["EnableKeyRotation"], true);
    let grants_cloudwatch = r[key]["Properties"]["KeyPolicy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| {
            s["Effect"] == "Allow"
                && s["Principal"]["Service"] == "cloudwatch.amazonaws.com"
                && strings(&s["Action"]).contains(&"kms:Decrypt".to_string())
                && strings(&s["Action"]).contains(&"kms:GenerateDataKey*".to_string())
        });
    assert!(
        grants_cloudwatch,
        "the key policy lets CloudWatch encrypt for the topic"
    );
    // Every alarm goes to that topic.
    for (name, res) in r {
        if res["Type"] == "AWS::CloudWatch::Alarm" {
            assert_eq!(
                res["Properties"]["AlarmActions"],
                json!([reference("AlarmTopic")]),
                "{name}"
            );
        }
    }
}

/// The period of a `rate(...)` expression, in seconds.
fn rate_seconds(expr: &str) -> i64 {
    energy_local::topology::parse_rate(expr)
        .expect("a rate")
        .as_secs()
}

#[test]
fn fan_out_is_bounded_and_sweeps_never_overlap() {
    let t = template();
    let r = resources(&t);
    let props = |f: &str| r[f]["Properties"].clone();
    for (function, parameter) in [
        ("EvaluateOrderFunction", "EvaluateOrderConcurrency"),
        ("NotifySlackFunction", "NotifySlackConcurrency"),
    ] {
        let reserved = &props(function)["ReservedConcurrentExecutions"];
        let branches = reserved["Fn::If"]
            .as_array()
            .unwrap_or_else(|| panic!("{function}: no reserved concurrency"));
        assert_eq!(branches[1], reference(parameter), "{function}");
        // 0 would throttle every call: it means "reserve none".
        assert_eq!(branches[2], reference("AWS::NoValue"), "{function}");
        assert!(t["Parameters"][parameter]["Default"].as_i64().unwrap() >= 1);
    }
    let sweep = props("SweepPendingFunction");
    let period = rate_seconds(
        t["Parameters"]["SweepSchedule"]["Default"]
            .as_str()
            .unwrap(),
    );
    let timeout = sweep["Timeout"]
        .as_i64()
        .expect("the sweeper's own timeout");
    assert!(
        timeout < period,
        "a sweep ({timeout} s) outlives its period ({period} s)"
    );
    assert_eq!(sweep["EventInvokeConfig"]["MaximumRetryAttempts"], 0);
    assert_eq!(
        sweep["Events"]["SweepSchedule"]["Properties"]["RetryPolicy"]["MaximumRetryAttempts"],
        0
    );
}

/// The template's `Conditions`, each true or false for these parameter values.
fn conditions(t: &Value, params: &BTreeMap<String, Value>) -> BTreeMap<String, bool> {
    /// `{"Condition": C}` replaced by C's own expression, so `rule_value` can evaluate it.
    fn inline(v: &Value, t: &Value) -> Value {
        match v {
            Value::Object(o) if o.len() == 1 && o.contains_key("Condition") => {
                let name = o["Condition"].as_str().expect("a condition name");
                let c = t["Conditions"]
                    .get(name)
                    .unwrap_or_else(|| panic!("no condition {name}"));
                inline(c, t)
            }
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, x)| (k.clone(), inline(x, t))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| inline(x, t)).collect()),
            other => other.clone(),
        }
    }
    t["Conditions"]
        .as_object()
        .expect("Conditions")
        .iter()
        .map(|(name, c)| {
            (
                name.clone(),
                rule_value(&inline(c, t), params) == json!(true),
            )
        })
        .collect()
}

/// `v` as CloudFormation sees it under these conditions: each `Fn::If` replaced by its branch,
/// and a value that comes out `AWS::NoValue` dropped (`None` when `v` itself is).
fn under(v: &Value, conditions: &BTreeMap<String, bool>) -> Option<Value> {
    if let Some([c, yes, no]) = v.get("Fn::If").and_then(Value::as_array).map(Vec::as_slice) {
        let c = c.as_str().expect("a condition name");
        let holds = *conditions
            .get(c)
            .unwrap_or_else(|| panic!("Fn::If on {c}, which is no condition"));
        return under(if holds { yes } else { no }, conditions);
    }
    if *v == reference("AWS::NoValue") {
        return None;
    }
    Some(match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter_map(|(k, x)| under(x, conditions).map(|x| (k.clone(), x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().filter_map(|x| under(x, conditions)).collect()),
        other => other.clone(),
    })
}

/// The resources a stack with these parameters creates, as CloudFormation sees them.
fn resources_under(t: &Value, params: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    let conditions = conditions(t, params);
    resources(t)
        .iter()
        .filter(|(_, r)| {
            r.get("Condition")
                .is_none_or(|c| conditions[c.as_str().expect("a condition name")])
        })
        .map(|(id, r)| (id.clone(), under(r, &conditions).unwrap_or_default()))
        .collect()
}

#[test]
fn with_the_concurrency_parameters_at_0_no_function_reserves_concurrency() {
    // An account at the default quota (10) cannot reserve any concurrency (AWS keeps 100
    // unreserved): the README tells it to set these two parameters to 0, and then no function
    // of the stack may reserve any, or the create fails and rolls back.
    let t = template();
    let off = [
        ("EvaluateOrderConcurrency", "0"),
        ("NotifySlackConcurrency", "0"),
    ];
    for env in ["dev", "prod"] {
        let params = parameters(&t, &off, &env_file(env)["Parameters"]);
        let reserving: Vec<(String, Value)> = resources_under(&t, &params)
            .into_iter()
            .filter_map(|(id, r)| {
                let reserved = r["Properties"].get("ReservedConcurrentExecutions")?;
                Some((id, reserved.clone()))
            })
            .collect();
        assert!(
            reserving.is_empty(),
            "{env}, reserved concurrency off: {reserving:?}"
        );
        for global in ["Function", "Api", "HttpApi"] {
            assert!(
                t["Globals"][global]
                    .get("ReservedConcurrentExecutions")
                    .is_none(),
                "Globals.{global}"
            );
        }
    }
    // With reservations on (the defaults), the sweeper keeps its one at a time.
    let on = resources_under(&t, &parameters(&t, &[], &json!({})));
    let reserved = |f: &str| on[f]["Properties"]["ReservedConcurrentExecutions"].clone();
    assert_eq!(reserved("SweepPendingFunction"), json!(1));
    assert_eq!(
        reserved("EvaluateOrderFunction"),
        reference("EvaluateOrderConcurrency")
    );
    assert_eq!(
        reserved("NotifySlackFunction"),
        reference("NotifySlackConcurrency")
    );
}

/// What each function puts on the bus: the detail-types its code publishes.
const EMITS: [(&str, &[&str]); 5] = [
    (
        "submit-order",
        &["OrderSubmitted", "OrderAmended", "OrderEvaluationDue"],
    ),
    (
        "evaluate-order",
        &[
            "OrderReady",
            "OrderFailed",
            "OrderCancelled",
            "OrderChangeRefused",
            "OrderPreliminaryResult",
            // The rest of a round too large for one invocation.
            "OrderChecksDue",
        ],
    ),
    ("store-result", &["OrderResultStored", "OrderFailed"]),
    ("notify-slack", &[]),
    ("sweep-pending", &["OrderEvaluationDue"]),
];

/// The `DomainEvent` variants a handler's code builds (`DomainEvent::X(` not followed by `=>`),
/// and `OrderFailed` where it fails an order through `handler::fail`.
fn published_in_code(binary: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let dir = root().join("handlers").join(binary).join("src");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for (i, m) in compact.match_indices("DomainEvent::") {
            let rest = &compact[i + m.len()..];
            let variant: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            let after = &rest[variant.len()..];
            if !after.starts_with('(') {
                continue;
            }
            // The argument's closing parenthesis, then: `=>` or `|` makes it a pattern.
            let mut depth = 0;
            let mut end = 0;
            for (k, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = k + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let tail = &after[end..];
            if tail.starts_with("=>") || tail.starts_with('|') || variant == "parse" {
                continue;
            }
            let kind = DetailType::ALL
                .into_iter()
                .find(|k| format!("{k:?}") == variant)
                .unwrap_or_else(|| panic!("{binary}: DomainEvent::{variant}"));
            out.insert(kind.name().to_string());
        }
        if compact.contains("handler::fail(") {
            out.insert("OrderFailed".to_string());
        }
    }
    out
}

#[test]
fn each_function_may_put_only_its_own_events_on_the_bus() {
    let t = template();
    for (logical_id, binary) in FUNCTIONS {
        let (_, emits) = EMITS.iter().find(|(b, _)| *b == binary).unwrap();
        let emits: BTreeSet<String> = emits.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            published_in_code(binary),
            emits,
            "{binary}: EMITS against its code"
        );
        let props = &resources(&t)[logical_id]["Properties"];
        let to_bus =
            props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "EventBridge";
        let mut puts = Vec::new();
        for (owner, s) in statements(&json!({"Resources": {logical_id: props["Policies"].clone()}}))
        {
            if s["Effect"] == "Allow"
                && strings(&s["Action"])
                    .iter()
                    .any(|a| a.starts_with("events:Put"))
            {
                puts.push((owner, s));
            }
        }
        if emits.is_empty() && !to_bus {
            assert!(
                puts.is_empty(),
                "{binary} publishes nothing, yet may PutEvents"
            );
            continue;
        }
        assert_eq!(puts.len(), 1, "{binary}: one PutEvents statement");
        let s = &puts[0].1;
        assert_eq!(s["Resource"], arn_of("EventBus"), "{binary}");
        let c = &s["Condition"]["StringEquals"];
        let mut sources = BTreeSet::from(["energy.orders".to_string()]);
        let mut types = emits.clone();
        if to_bus {
            // Lambda puts the function's on-failure records with the function's role.
            sources.insert("lambda".into());
            types.insert("Lambda Function Invocation Result - Failure".into());
        }
        let listed = |k: &str| -> BTreeSet<String> { strings(&c[k]).into_iter().collect() };
        assert_eq!(listed("events:source"), sources, "{binary}: events:source");
        assert_eq!(
            listed("events:detail-type"),
            types,
            "{binary}: events:detail-type"
        );
        assert_eq!(
            s["Condition"].as_object().unwrap().len(),
            1,
            "{binary}: StringEquals only (an IfExists or ForAnyValue would let other events through)"
        );
    }
    // notify-slack turns on-failure records into failure notices: only our functions' records.
    let pattern = &template_patterns(&t)["ProcessingErrorRule"];
    assert_eq!(
        pattern["detail"]["requestContext"]["functionArn"],
        json!([{"wildcard": "arn:*:lambda:*:*:function:energy-*"}])
    );
    for (logical_id, binary) in FUNCTIONS {
        assert_eq!(
            resources(&t)[logical_id]["Properties"]["FunctionName"],
            json!({"Fn::Sub": format!("energy-${{EnvironmentName}}-{binary}")}),
            "{logical_id}"
        );
    }
}

#[test]
fn every_async_hop_retries_then_dead_letters_and_every_dead_letter_queue_has_an_alarm() {
    let t = template();
    let r = resources(&t);
    // Every rule and schedule event: a retry policy and a dead-letter queue.
    for (name, source) in template_event_sources(&t) {
        let p = &source["Properties"];
        assert!(
            p["RetryPolicy"]["MaximumRetryAttempts"].is_number(),
            "{name}"
        );
        assert!(
            p["RetryPolicy"]["MaximumEventAgeInSeconds"].is_number(),
            "{name}"
        );
        assert!(
            p["DeadLetterConfig"]["Arn"]["Fn::GetAtt"].is_array(),
            "{name}"
        );
    }
    // Every function invoked asynchronously: retries set, failures kept, or a reason why not.
    for (logical_id, _) in FUNCTIONS {
        let p = &r[logical_id]["Properties"];
        let async_invoked = p["Events"].as_object().is_some_and(|e| !e.is_empty());
        if !async_invoked {
            continue;
        }
        let config = &p["EventInvokeConfig"];
        assert!(config["MaximumRetryAttempts"].is_number(), "{logical_id}");
        let kept = config["DestinationConfig"]["OnFailure"]["Destination"].is_object();
        // The sweeper's failed tick is repaired by the next tick: nothing to keep.
        assert!(
            kept || logical_id == "SweepPendingFunction",
            "{logical_id}: a failure after the retries is lost"
        );
    }
    // One-time schedules: the code sets a retry policy and SCHEDULE_DLQ_ARN's queue, which the
    // scheduler role may send to.
    let evaluate = &r["EvaluateOrderFunction"]["Properties"];
    assert_eq!(
        evaluate["Environment"]["Variables"]["SCHEDULE_DLQ_ARN"],
        arn_of("ScheduleDlq")
    );
    let scheduler_sends =
        statements(&json!({"Resources": {"SchedulerRole": r["SchedulerRole"].clone()}}))
            .iter()
            .any(|(_, s)| {
                strings(&s["Action"]) == ["sqs:SendMessage"]
                    && s["Resource"] == arn_of("ScheduleDlq")
            });
    assert!(
        scheduler_sends,
        "the scheduler role may dead-letter into ScheduleDlq"
    );
    let code = read("crates/aws/src/scheduler.rs");
    assert!(code.contains(".retry_policy(") && code.contains(".set_dead_letter_config("));
    // Every queue: kept on stack deletion, and an alarm on its depth.
    for (name, res) in r {
        if res["Type"] != "AWS::SQS::Queue" {
            continue;
        }
        assert_eq!(
            (
                res["DeletionPolicy"].as_str(),
                res["UpdateReplacePolicy"].as_str()
            ),
            (Some("RetainExceptOnCreate"), Some("Retain")),
            "{name}"
        );
        let alarmed = r.values().any(|a| {
            a["Type"] == "AWS::CloudWatch::Alarm"
                && a["Properties"]["Namespace"] == "AWS/SQS"
                && a["Properties"]["Dimensions"].as_array().is_some_and(|d| {
                    d.iter()
                        .any(|d| d["Value"] == json!({"Fn::GetAtt": [name, "QueueName"]}))
                })
        });
        assert!(alarmed, "{name} has no alarm");
    }
    // And the drops no queue sees: async events dropped, destinations that failed, API 5xx, a
    // throttled due index.
    let metrics: BTreeSet<String> = r
        .values()
        .filter(|a| a["Type"] == "AWS::CloudWatch::Alarm")
        .map(|a| {
            a["Properties"]["MetricName"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    for m in [
        "AsyncEventsDropped",
        "DestinationDeliveryFailures",
        "5xx",
        "ReadThrottleEvents",
        "WriteThrottleEvents",
    ] {
        assert!(metrics.contains(m), "no alarm on {m}");
    }
}

#[test]
fn each_route_needs_its_own_scope_and_callers_get_read_or_write_policies() {
    let t = template();
    let r = resources(&t);
    for (route, scope) in [
        ("PostOrdersRoute", "JwtWriteScope"),
        ("GetOrderRoute", "JwtReadScope"),
        ("AmendOrderRoute", "JwtWriteScope"),
        ("CancelOrderRoute", "JwtWriteScope"),
    ] {
        assert_eq!(
            r[route]["Properties"]["AuthorizationScopes"],
            json!({"Fn::If": ["UseJwt", [reference(scope)], reference("AWS::NoValue")]}),
            "{route}"
        );
    }
    for (policy, methods) in [
        ("OrdersReaderPolicy", vec!["GET"]),
        ("OrdersWriterPolicy", vec!["POST", "PUT", "DELETE"]),
    ] {
        assert_eq!(r[policy]["Condition"], "UseIam");
        let resources: Vec<String> =
            field_strings(&r[policy]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"]);
        let found: Vec<String> = resources
            .iter()
            .map(|a| {
                a.split("/*/")
                    .nth(1)
                    .unwrap()
                    .split('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(found, methods, "{policy}");
    }
}

#[test]
fn what_outlives_a_stack_is_kept_and_prod_data_cannot_be_deleted_by_accident() {
    let t = template();
    let r = resources(&t);
    for name in ["OrdersTable", "ResultsBucket", "SlackWebhookSecret"] {
        // Kept when the stack goes, but not when its first create rolls back: a retained
        // fixed-name secret would make every later create fail.
        assert_eq!(r[name]["DeletionPolicy"], "RetainExceptOnCreate", "{name}");
        assert_eq!(r[name]["UpdateReplacePolicy"], "Retain", "{name}");
    }
    assert_eq!(
        r["OrdersTable"]["Properties"]["DeletionProtectionEnabled"],
        json!({"Fn::If": ["IsProd", true, false]})
    );
    // Services assume roles and write to queues for this stack's resources only.
    let trust = &r["SchedulerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
        ["StringEquals"];
    assert_eq!(trust["aws:SourceArn"], arn_of("ScheduleGroup"));
    let dlq =
        &r["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Condition"];
    assert!(dlq["ArnLike"]["aws:SourceArn"].is_array(), "{dlq}");
    // Rollbacks need every artifact a deployed template names: only replaced versions expire.
    let p = pipeline();
    for rule in p["Resources"]["ArtifactBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_array()
        .unwrap()
    {
        assert!(
            rule.get("ExpirationInDays").is_none() && rule.get("ExpirationDate").is_none(),
            "{rule}"
        );
    }
    // The buildspec's cache has somewhere to go; the workflow's token reads the code only.
    assert_eq!(p["Resources"]["Build"]["Properties"]["Cache"]["Type"], "S3");
    let workflow: Value = parse_cfn(&read(".github/workflows/ci.yml"));
    assert_eq!(workflow["permissions"], json!({"contents": "read"}));
}

/// The properties that set a resource's physical name (the name an account holds once).
const PHYSICAL_NAMES: [&str; 22] = [
    "Name",
    "AliasName",
    "BucketName",
    "ClusterName",
    "DBClusterIdentifier",
    "DBInstanceIdentifier",
    "DeliveryStreamName",
    "DomainName",
    "FileSystemName",
    "FunctionName",
    "GroupName",
    "LogGroupName",
    "ManagedPolicyName",
    "QueueName",
    "RegistryName",
    "RepositoryName",
    "RoleName",
    "SchemaName",
    "StateMachineName",
    "StreamName",
    "TableName",
    "TopicName",
];

#[test]
fn nothing_that_outlives_its_stack_has_a_fixed_name() {
    // A retained resource stays when the stack is deleted; with a fixed name it would make the
    // next create of the stack fail ("already exists"). Its name is CloudFormation's own, or
    // holds the stack's id, which is new with each create.
    let t = template();
    let mut fixed = Vec::new();
    let mut retained = 0;
    for (id, r) in resources(&t) {
        let policy = r["DeletionPolicy"].as_str().unwrap_or("Delete");
        if !["Retain", "RetainExceptOnCreate"].contains(&policy) {
            continue;
        }
        retained += 1;
        let properties = r["Properties"].as_object().cloned().unwrap_or_default();
        for (key, value) in properties {
            let is_name = PHYSICAL_NAMES.contains(&key.as_str());
            if is_name && !value.to_string().contains("\"AWS::StackId\"") {
                fixed.push(format!("{id}.{key} = {value}"));
            }
        }
    }
    assert!(
        retained >= 10,
        "the tables, bucket, secret and queues are retained"
    );
    // Not CloudFormation's generated name either for a secret: that one starts with the logical
    // id, and the deploy roles and boundaries (pipeline.yaml) reach energy-<env>/* secrets only.
    for (id, r) in resources(&t) {
        if r["Type"] == "AWS::SecretsManager::Secret" {
            let name = &r["Properties"]["Name"]["Fn::Sub"][0];
            assert!(
                name.as_str()
                    .is_some_and(|n| n.starts_with("energy-${EnvironmentName}/")),
                "{id}: {name}"
            );
        }
    }
    assert!(
        fixed.is_empty(),
        "retained with a fixed name (a re-create fails): {fixed:#?}"
    );
}

#[test]
fn every_checkov_finding_skipped_in_place_says_why() {
    for file in ["template.yaml", "pipeline.yaml"] {
        for (n, line) in read(file).lines().enumerate() {
            let Some(skip) = line.trim().strip_prefix("# checkov:skip=") else {
                assert!(!line.contains("checkov:skip"), "{file}:{}: {line}", n + 1);
                continue;
            };
            let (id, reason) = skip.split_once(':').unwrap_or((skip, ""));
            assert!(id.starts_with("CKV_"), "{file}:{}: {id}", n + 1);
            assert!(
                reason.trim().len() >= 20,
                "{file}:{}: {id} skipped without a reason",
                n + 1
            );
        }
    }
}

// ---------------------------------------------------------------- IAM, evaluated offline

/// Sample values for a template's pseudo parameters, parameters and resources: what an `Fn::Sub`,
/// `Ref` or `Fn::GetAtt` in a policy becomes in account 123456789012, eu-west-1, stack energy-dev.
fn sample_arn(logical_id: &str, attribute: &str) -> String {
    const P: &str = "arn:aws";
    const RA: &str = "eu-west-1:123456789012";
    match (logical_id, attribute) {
        ("AWS::Partition", _) => "aws".into(),
        ("AWS::Region", _) => "eu-west-1".into(),
        ("AWS::AccountId", _) => "123456789012".into(),
        ("AWS::StackName", _) => "energy-dev".into(),
        ("EnvironmentName", _) => "dev".into(),
        ("EventBusName", _) => "energy".into(),
        ("PermissionsBoundary", _) => "energy-dev-boundary".into(),
        ("PlatformApiKeySecretArn", _) => {
            format!("{P}:secretsmanager:{RA}:secret:energy-dev/platform-api-key-AbCdEf")
        }
        ("EventBus", _) => format!("{P}:events:{RA}:event-bus/energy-dev"),
        ("OrdersTable", "Arn") => format!("{P}:dynamodb:{RA}:table/energy-dev-OrdersTable-1A2B3C"),
        ("ResultsBucket", "Arn") => format!("{P}:s3:::energy-dev-resultsbucket-1a2b3c"),
        ("SlackWebhookSecret", _) => {
            format!(
                "{P}:secretsmanager:{RA}:secret:energy-dev/slack-webhook-0f6a2b40-8d1e-11f0-9a3c-0a1b2c3d4e5f-AbCdEf"
            )
        }
        ("ScheduleGroup", "Arn") => format!("{P}:scheduler:{RA}:schedule-group/energy-dev"),
        ("ScheduleGroup", _) => "energy-dev".into(),
        ("SchedulerRole", "Arn") => {
            format!("{P}:iam::123456789012:role/energy-dev-SchedulerRole-1A2B3C")
        }
        ("HttpApi", _) => "a1b2c3d4e5".into(),
        ("ArtifactBucket", "Arn") => format!("{P}:s3:::energy-pipeline-artifactbucket-1a2b3c"),
        ("ConnectionArn", _) => {
            format!("{P}:codeconnections:{RA}:connection/aaaabbbb-cccc-dddd-eeee-ffff00001111")
        }
        ("Build", "Arn") => format!("{P}:codebuild:{RA}:project/Build-1A2B3C"),
        ("DevDeployRole", "Arn") => {
            format!("{P}:iam::123456789012:role/energy-pipeline-DevDeployRole-1A2B3C")
        }
        ("ProdDeployRole", "Arn") => {
            format!("{P}:iam::123456789012:role/energy-pipeline-ProdDeployRole-1A2B3C")
        }
        ("DevBoundary", _) => format!("{P}:iam::123456789012:policy/energy-dev-boundary"),
        ("ProdBoundary", _) => format!("{P}:iam::123456789012:policy/energy-prod-boundary"),
        (q, "Arn") if q.ends_with("Dlq") || q.ends_with("Failures") => {
            format!("{P}:sqs:{RA}:energy-dev-{q}-1A2B3C")
        }
        (other, a) => panic!("no sample for {other}.{a}: add one to sample_arn"),
    }
}

/// A policy field's strings with every intrinsic resolved to its sample.
fn resolve(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(resolve).collect(),
        Value::Object(m) => {
            if let Some(r) = m.get("Ref").and_then(Value::as_str) {
                return vec![sample_arn(r, "")];
            }
            if let Some(g) = m.get("Fn::GetAtt").and_then(Value::as_array) {
                return vec![sample_arn(g[0].as_str().unwrap(), g[1].as_str().unwrap())];
            }
            if let Some(sub) = m.get("Fn::Sub") {
                let text = sub.as_str().or_else(|| sub[0].as_str()).unwrap();
                let mut out = String::new();
                let mut rest = text;
                while let Some(i) = rest.find("${") {
                    out.push_str(&rest[..i]);
                    let end = rest[i..].find('}').unwrap() + i;
                    let name = &rest[i + 2..end];
                    let (id, attr) = name.split_once('.').unwrap_or((name, ""));
                    out.push_str(&sample_arn(id, attr));
                    rest = &rest[end + 1..];
                }
                out.push_str(rest);
                return vec![out];
            }
            panic!("a policy value this test cannot resolve: {v}")
        }
        _ => Vec::new(),
    }
}

/// IAM's wildcard match (`*` any run, `?` one character), case-sensitive or not.
fn glob(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = if ignore_case {
        (
            pattern.to_lowercase().chars().collect(),
            value.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), value.chars().collect())
    };
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// One request: an action on a resource, with the condition keys it carries.
struct Request<'a> {
    action: &'a str,
    resource: &'a str,
    context: &'a [(&'a str, &'a str)],
}

fn conditions_hold(condition: &Value, r: &Request<'_>) -> bool {
    let Some(ops) = condition.as_object() else {
        return true;
    };
    ops.iter().all(|(op, keys)| {
        keys.as_object().unwrap().iter().all(|(key, wanted)| {
            let wanted = resolve(wanted);
            let got = r
                .context
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| *v);
            match (op.as_str(), got) {
                ("StringEquals" | "ArnEquals", Some(g)) => wanted.iter().any(|w| w == g),
                ("StringLike" | "ArnLike", Some(g)) => wanted.iter().any(|w| glob(w, g, false)),
                ("StringNotEquals", Some(g)) => wanted.iter().all(|w| w != g),
                ("StringNotEquals", None) => true,
                ("Null", got) => wanted.iter().all(|w| (w == "true") == got.is_none()),
                (_, None) => false,
                (other, _) => panic!("condition operator {other}: teach conditions_hold"),
            }
        })
    })
}

/// Whether the statements allow the request: an Allow matches and no Deny does.
fn allows(statements: &[Value], r: &Request<'_>) -> bool {
    let matches = |s: &Value| {
        resolve(&s["Action"])
            .iter()
            .any(|a| glob(a, r.action, true))
            && resolve(&s["Resource"])
                .iter()
                .any(|p| glob(p, r.resource, false))
            && conditions_hold(&s["Condition"], r)
    };
    let denied = statements
        .iter()
        .any(|s| s["Effect"] == "Deny" && matches(s));
    !denied
        && statements
            .iter()
            .any(|s| s["Effect"] == "Allow" && matches(s))
}

/// The statements of a role's inline policies (both branches of an `Fn::If`).
fn role_statements(role: &Value) -> Vec<Value> {
    fn policies(v: &Value, out: &mut Vec<Value>) {
        if let Some([_, yes, no]) = v.get("Fn::If").and_then(Value::as_array).map(Vec::as_slice) {
            policies(yes, out);
            policies(no, out);
            return;
        }
        if let Some(s) = v.get("PolicyDocument").map(|d| &d["Statement"]) {
            match s {
                Value::Array(a) => out.extend(a.iter().cloned()),
                one => out.push(one.clone()),
            }
        }
    }
    let mut out = Vec::new();
    for p in role["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
    {
        policies(p, &mut out);
    }
    out
}

/// The template as CloudFormation deploys it: SAM's transform, applied offline by SAM CLI's
/// own translator (scripts/sam-transform).
fn transformed() -> Value {
    let python = root().join(".venv-sam/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/setup-sam (the test command does)",
        python.display()
    );
    let out = std::process::Command::new(python)
        .arg(root().join("scripts/sam-transform"))
        .arg(root().join("template.yaml"))
        .output()
        .expect("run scripts/sam-transform");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn each_function_role_as_deployed_may_put_only_its_own_events_on_the_bus() {
    let t = transformed();
    let bus = sample_arn("EventBus", "Arn");
    let all_types: Vec<&str> = DetailType::ALL.iter().map(|k| k.name()).collect();
    for (logical_id, binary) in FUNCTIONS {
        let role = &t["Resources"][format!("{logical_id}Role")];
        let statements = role_statements(role);
        let (_, emits) = EMITS.iter().find(|(b, _)| *b == binary).unwrap();
        let to_bus = t["Resources"].as_object().unwrap().values().any(|r| {
            r["Type"] == "AWS::Lambda::EventInvokeConfig"
                && r["Properties"]["FunctionName"] == json!({"Ref": logical_id})
                && r["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
                    == json!({"Fn::GetAtt": ["EventBus", "Arn"]})
        });
        let failure = "Lambda Function Invocation Result - Failure";
        let mut candidates: Vec<(&str, &str)> =
            all_types.iter().map(|t| ("energy.orders", *t)).collect();
        candidates.push(("lambda", failure));
        candidates.push(("energy.other", "OrderFailed"));
        candidates.push((
            "aws.codepipeline",
            "CodePipeline Pipeline Execution State Change",
        ));
        for (source, detail_type) in candidates {
            let may = allows(
                &statements,
                &Request {
                    action: "events:PutEvents",
                    resource: &bus,
                    context: &[
                        ("events:source", source),
                        ("events:detail-type", detail_type),
                    ],
                },
            );
            let should = (source == "energy.orders" && emits.contains(&detail_type))
                || (to_bus && source == "lambda" && detail_type == failure);
            assert_eq!(may, should, "{binary} putting {source} {detail_type}");
        }
    }
}

/// cfn-lint's copy of the CloudFormation resource provider schemas (in .venv).
fn provider_schemas() -> PathBuf {
    let lib = root().join(".venv/lib");
    let python = std::fs::read_dir(&lib)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run scripts/setup-venv (the test command does)",
                lib.display()
            )
        })
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("python3"))
        })
        .expect("a python3.* dir in .venv/lib");
    python.join("site-packages/cfnlint/data/schemas")
}

/// What CloudFormation's handlers for a resource type call: create, read, update and delete.
fn handler_permissions(schemas: &std::path::Path, resource_type: &str) -> BTreeSet<String> {
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(schemas.join("providers/eu-west-1.json")).unwrap(),
    )
    .unwrap();
    let file = index[resource_type]
        .as_str()
        .unwrap_or_else(|| panic!("{resource_type}: no provider schema in cfn-lint"));
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(schemas.join(format!("resources/{file}.json"))).unwrap(),
    )
    .unwrap();
    ["create", "read", "update", "delete"]
        .iter()
        .flat_map(|h| strings(&schema["handlers"][h]["permissions"]))
        .collect()
}

/// Handler permissions the template never makes CloudFormation use: (type, action pattern, why).
const UNUSED_HANDLER_PERMISSIONS: [(&str, &str, &str); 61] = [
    (
        "AWS::Lambda::Function",
        "lambda:GetLayerVersion",
        "no layers",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:PassCapacityProvider",
        "no capacity provider",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:AssociateRuntimeAlias",
        "no runtime alias",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:PutFunctionScalingConfig",
        "no scaling config",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:GetCodeSigningConfig",
        "no code signing",
    ),
    (
        "AWS::Logs::LogGroup",
        "firehose:TagDeliveryStream",
        "no Firehose delivery",
    ),
    (
        "AWS::Logs::LogGroup",
        "s3:REST.PUT.OBJECT",
        "no S3 delivery",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:AssociateKmsKey",
        "no customer-managed key",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:DisassociateKmsKey",
        "no customer-managed key",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:*DataProtectionPolicy",
        "no data protection policy",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:*IndexPolicy",
        "no index policy",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:*IndexPolicies",
        "no index policy",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:PutBearerTokenAuthentication",
        "no bearer-token ingestion",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:PutLogGroupDeletionProtection",
        "no deletion protection on log groups",
    ),
    ("AWS::S3::Bucket", "s3tables:*", "no table bucket"),
    (
        "AWS::S3::Bucket",
        "s3:*MetadataTableConfiguration",
        "no metadata table",
    ),
    (
        "AWS::S3::Bucket",
        "s3:UpdateBucketMetadata*",
        "no metadata table",
    ),
    (
        "AWS::S3::Bucket",
        "s3:*AnalyticsConfiguration",
        "no analytics configuration",
    ),
    (
        "AWS::S3::Bucket",
        "s3:*MetricsConfiguration",
        "no metrics configuration",
    ),
    (
        "AWS::S3::Bucket",
        "s3:*InventoryConfiguration",
        "no inventory configuration",
    ),
    (
        "AWS::S3::Bucket",
        "s3:*IntelligentTieringConfiguration",
        "no intelligent tiering",
    ),
    ("AWS::S3::Bucket", "s3:*Replication*", "no replication"),
    ("AWS::S3::Bucket", "s3:*BucketWebsite", "no website"),
    ("AWS::S3::Bucket", "s3:*BucketCors", "no CORS rules"),
    (
        "AWS::S3::Bucket",
        "s3:PutAccelerateConfiguration",
        "no transfer acceleration",
    ),
    (
        "AWS::S3::Bucket",
        "s3:Put*ObjectLockConfiguration",
        "no object lock",
    ),
    (
        "AWS::S3::Bucket",
        "s3:PutBucketAbac",
        "no attribute-based access control",
    ),
    (
        "AWS::S3::Bucket",
        "s3:Put*Acl",
        "ACLs are off (BucketOwnerEnforced)",
    ),
    (
        "AWS::S3::Bucket",
        "s3:PutBucketLogging",
        "no access logging (see the checkov skip)",
    ),
    (
        "AWS::S3::Bucket",
        "s3:PutBucketNotification",
        "no notifications",
    ),
    (
        "AWS::SNS::Topic",
        "iam:GetRole",
        "no delivery-status logging role",
    ),
    (
        "AWS::SNS::Subscription",
        "iam:GetRole",
        "no delivery-status logging role",
    ),
    (
        "AWS::SNS::Topic",
        "sns:PutDataProtectionPolicy",
        "no data protection policy",
    ),
    (
        "AWS::SecretsManager::Secret",
        "secretsmanager:*Region*",
        "no replica regions",
    ),
    (
        "AWS::IAM::ManagedPolicy",
        "iam:*GroupPolicy",
        "attached to no group",
    ),
    (
        "AWS::IAM::ManagedPolicy",
        "iam:*UserPolicy",
        "attached to no user",
    ),
    (
        "AWS::IAM::Role",
        "iam:DeleteRolePermissionsBoundary",
        "every role keeps its boundary: the deploy roles are denied this",
    ),
    (
        "AWS::ApiGatewayV2::Api",
        "s3:getObject",
        "no OpenAPI body imported from S3",
    ),
    (
        "AWS::ApiGatewayV2::Authorizer",
        "iam:PassRole",
        "no authorizer credentials role",
    ),
    (
        "AWS::ApiGatewayV2::Integration",
        "iam:PassRole",
        "no integration credentials role",
    ),
    (
        "AWS::DynamoDB::Table",
        "kinesis:*",
        "no Kinesis streaming destination",
    ),
    (
        "AWS::DynamoDB::Table",
        "kms:*",
        "no customer-managed key (SSEEnabled, the AWS-managed key)",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:*Replica*",
        "no global table replicas",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:*Item",
        "CloudFormation writes no items",
    ),
    ("AWS::DynamoDB::Table", "dynamodb:Scan", "no import"),
    ("AWS::DynamoDB::Table", "dynamodb:Query", "no import"),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:*Import*",
        "no import from S3",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:*KinesisStreamingDestination",
        "no Kinesis streaming destination",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:UpdateContributorInsights",
        "contributor insights off",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:*ResourcePolicy",
        "no resource policy on the table",
    ),
    ("AWS::DynamoDB::Table", "logs:*", "no import (its logs)"),
    ("AWS::DynamoDB::Table", "s3:*", "no import from S3"),
    (
        "AWS::DynamoDB::Table",
        "iam:CreateServiceLinkedRole",
        "no replicas or auto scaling",
    ),
    ("AWS::Events::Archive", "kms:*", "no customer-managed key"),
    ("AWS::Events::EventBus", "kms:*", "no customer-managed key"),
    (
        "AWS::Events::EventBus",
        "events:*Permission",
        "no bus policy",
    ),
    (
        "AWS::Events::Rule",
        "iam:PassRole",
        "no rule target takes a role",
    ),
    (
        "AWS::Lambda::Function",
        "kms:*",
        "no customer-managed key for the environment",
    ),
    (
        "AWS::Lambda::Function",
        "elasticfilesystem:*",
        "no file system",
    ),
    ("AWS::Lambda::Function", "s3files:*", "no file system"),
    (
        "AWS::Lambda::Function",
        "lambda:*CodeSigningConfig",
        "no code signing (the Get of the function's own is granted)",
    ),
];

/// The ARN a handler permission of a resource type is checked on, and the condition keys the
/// call carries. `*` for actions that take no resource.
fn deploy_request(
    resource_type: &str,
    action: &str,
    e: &str,
) -> (String, Vec<(&'static str, String)>) {
    const RA: &str = "eu-west-1:123456789012";
    let none = Vec::new();
    let env = e.trim_start_matches("energy-");
    let boundary = vec![(
        "iam:PermissionsBoundary",
        format!("arn:aws:iam::123456789012:policy/energy-{env}-boundary"),
    )];
    let star = [
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DeleteResourcePolicy",
        "logs:DescribeLogGroups",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
        "secretsmanager:GetRandomPassword",
    ];
    if star.iter().any(|a| a.eq_ignore_ascii_case(action)) {
        return ("*".into(), none);
    }
    let role = format!("arn:aws:iam::123456789012:role/{e}-EvaluateOrderFunctionRole-1A2B3C");
    match action {
        "iam:PassRole" => {
            let service = if resource_type == "AWS::Scheduler::Schedule" {
                "scheduler"
            } else {
                "lambda"
            };
            return (
                role,
                vec![("iam:PassedToService", format!("{service}.amazonaws.com"))],
            );
        }
        "iam:CreateRole"
        | "iam:PutRolePolicy"
        | "iam:AttachRolePolicy"
        | "iam:DetachRolePolicy"
        | "iam:DeleteRolePolicy"
        | "iam:PutRolePermissionsBoundary"
            if resource_type == "AWS::IAM::Role" =>
        {
            return (role, boundary);
        }
        "iam:AttachRolePolicy" | "iam:DetachRolePolicy" => return (role, boundary),
        "s3:GetObject" | "s3:GetObjectVersion" if resource_type == "AWS::Lambda::Function" => {
            return (
                format!("{}/energy/1a2b3c", sample_arn("ArtifactBucket", "Arn")),
                none,
            );
        }
        "scheduler:DeleteSchedule" => {
            return (format!("arn:aws:scheduler:{RA}:schedule/{e}/x-1"), none);
        }
        _ => {}
    }
    let arn = match resource_type {
        t if t.starts_with("AWS::ApiGatewayV2::") => {
            "arn:aws:apigateway:eu-west-1::/apis/a1b2c3d4e5".into()
        }
        "AWS::CloudWatch::Alarm" => {
            format!("arn:aws:cloudwatch:{RA}:alarm:{e}-SweepDlqAlarm-1A2B3C")
        }
        "AWS::DynamoDB::Table" => format!("arn:aws:dynamodb:{RA}:table/{e}-OrdersTable-1A2B3C"),
        "AWS::EventSchemas::Registry" => format!("arn:aws:schemas:{RA}:registry/{e}"),
        "AWS::EventSchemas::Schema" => {
            format!("arn:aws:schemas:{RA}:schema/{e}/energy.orders@OrderReady")
        }
        "AWS::Events::Archive" => format!("arn:aws:events:{RA}:archive/{e}-events"),
        "AWS::Events::EventBus" => format!("arn:aws:events:{RA}:event-bus/{e}"),
        "AWS::Events::Rule" => format!("arn:aws:events:{RA}:rule/{e}/{e}-StoreResultRule-1A2B3C"),
        "AWS::IAM::ManagedPolicy" => {
            format!("arn:aws:iam::123456789012:policy/{e}-OrdersReaderPolicy-1A2B3C")
        }
        "AWS::IAM::Role" => role,
        "AWS::KMS::Key" => {
            // The tags the template gives the key, as the request carries them (CreateKey) and
            // the key then has them: nothing assumed, CloudFormation adds none to KMS keys.
            let mut context = Vec::new();
            for tag in template()["Resources"]["AlarmKey"]["Properties"]["Tags"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let key = tag["Key"].as_str().unwrap();
                let value = match &tag["Value"] {
                    v if *v == json!({"Ref": "AWS::StackName"}) => e.to_string(),
                    Value::String(v) => v.clone(),
                    other => panic!("a key tag this test cannot read: {other}"),
                };
                let (prefix, key) = if action == "kms:CreateKey" {
                    ("aws:RequestTag/", key)
                } else {
                    ("aws:ResourceTag/", key)
                };
                context.push((leak(format!("{prefix}{key}")), value.clone()));
                if action == "kms:TagResource" {
                    context.push((leak(format!("aws:RequestTag/{key}")), value));
                }
            }
            let resource = if action == "kms:CreateKey" {
                "*".to_string()
            } else {
                format!("arn:aws:kms:{RA}:key/1234abcd-12ab-34cd-56ef-1234567890ab")
            };
            return (resource, context);
        }
        t if t.starts_with("AWS::Lambda::") => {
            format!("arn:aws:lambda:{RA}:function:{e}-evaluate-order")
        }
        t if t.starts_with("AWS::Logs::") => {
            format!("arn:aws:logs:{RA}:log-group:/aws/lambda/{e}-evaluate-order")
        }
        t if t.starts_with("AWS::S3::") => format!("arn:aws:s3:::{e}-resultsbucket-1a2b3c"),
        t if t.starts_with("AWS::SNS::") => format!("arn:aws:sns:{RA}:{e}-AlarmTopic-1A2B3C"),
        t if t.starts_with("AWS::SQS::") => format!("arn:aws:sqs:{RA}:{e}-SweepDlq-1A2B3C"),
        "AWS::Scheduler::ScheduleGroup" => format!("arn:aws:scheduler:{RA}:schedule-group/{e}"),
        "AWS::SecretsManager::Secret" => {
            format!(
                "arn:aws:secretsmanager:{RA}:secret:{e}/slack-webhook-0f6a2b40-8d1e-11f0-9a3c-0a1b2c3d4e5f-AbCdEf"
            )
        }
        other => panic!("{other}: add its sample ARN to deploy_request"),
    };
    (arn, none)
}

/// The IAM action a handler permission is authorized as: API Gateway's are HTTP verbs (its
/// tagging a PUT or DELETE on /tags), and S3 removes a configuration with its Put.
fn iam_action(action: &str) -> (&str, Option<String>) {
    match action {
        "apigateway:TagResource" => (
            "apigateway:PUT",
            Some("arn:aws:apigateway:eu-west-1::/tags/x".into()),
        ),
        "apigateway:UntagResource" => (
            "apigateway:DELETE",
            Some("arn:aws:apigateway:eu-west-1::/tags/x".into()),
        ),
        // S3 has no Delete action for these: removing the configuration is a Put.
        "s3:DeleteBucketEncryption" => ("s3:PutEncryptionConfiguration", None),
        "s3:DeleteBucketLifecycle" => ("s3:PutLifecycleConfiguration", None),
        a => (a, None),
    }
}

fn deploy_role(env: &str) -> Vec<Value> {
    let p = pipeline();
    let name = format!("{}{}DeployRole", env[..1].to_uppercase(), &env[1..]);
    role_statements(&p["Resources"][&name])
}

#[test]
fn the_pipeline_and_the_deploy_roles_may_create_change_sets_through_the_sam_transform() {
    // A change set of a template with a Transform is created on the stack and on the transform
    // itself (AWS: the policy must name the transform's ARN for AWS::Serverless).
    let t = template();
    let transform = t["Transform"].as_str().expect("one transform");
    assert_eq!(transform, "AWS::Serverless-2016-10-31");
    let transform_arn = format!(
        "arn:aws:cloudformation:eu-west-1:aws:transform/{}",
        transform.trim_start_matches("AWS::")
    );
    let p = pipeline();
    for role in ["PipelineRole", "DevDeployRole", "ProdDeployRole"] {
        let statements = role_statements(&p["Resources"][role]);
        let create = |resource: &str| {
            allows(
                &statements,
                &Request {
                    action: "cloudformation:CreateChangeSet",
                    resource,
                    context: &[],
                },
            )
        };
        assert!(create(&transform_arn), "{role}: {transform_arn}");
        assert!(
            !create("arn:aws:cloudformation:eu-west-1:aws:transform/Include"),
            "{role}: only the transform the template uses"
        );
    }
    let pipeline_role = role_statements(&p["Resources"]["PipelineRole"]);
    for env in ["dev", "prod"] {
        let stack = format!(
            "arn:aws:cloudformation:eu-west-1:123456789012:stack/energy-{env}/0f6a2b40-8d1e-11f0-9a3c-0a1b2c3d4e5f"
        );
        for action in [
            "cloudformation:CreateChangeSet",
            "cloudformation:ExecuteChangeSet",
        ] {
            let request = Request {
                action,
                resource: &stack,
                context: &[],
            };
            assert!(allows(&pipeline_role, &request), "{action} on {stack}");
        }
    }
}

/// A string that lives as long as the test (condition keys are built from the template's tags).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A call a deploy role must not be able to make: action, resource, condition keys.
type Refused<'a> = (&'a str, String, Vec<(&'a str, &'a str)>);

#[test]
fn the_deploy_roles_can_deploy_the_template_and_nothing_more() {
    let schemas = provider_schemas();
    let t = transformed();
    let types: BTreeSet<String> = t["Resources"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["Type"].as_str().unwrap().to_string())
        .collect();
    for env in ["dev", "prod"] {
        let e = format!("energy-{env}");
        let statements = deploy_role(env);
        let mut missing = Vec::new();
        for resource_type in &types {
            for action in handler_permissions(&schemas, resource_type) {
                let unused = UNUSED_HANDLER_PERMISSIONS
                    .iter()
                    .any(|(t, a, _)| t == resource_type && glob(a, &action, true));
                if unused {
                    continue;
                }
                let (arn, context) = deploy_request(resource_type, &action, &e);
                let (iam, tags_arn) = iam_action(&action);
                let resource = tags_arn.unwrap_or(arn);
                let context: Vec<(&str, &str)> =
                    context.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let request = Request {
                    action: iam,
                    resource: &resource,
                    context: &context,
                };
                if !allows(&statements, &request) {
                    missing.push(format!("{resource_type}: {action} on {resource}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "{env}: the deploy role cannot:\n{}",
            missing.join("\n")
        );

        // And no more: nothing of the other environment, no role without the boundary, no
        // change to the boundary, no secret read, no role passed to another service.
        let other = if env == "dev" {
            "energy-prod"
        } else {
            "energy-dev"
        };
        let boundary = sample_arn(
            if env == "dev" {
                "DevBoundary"
            } else {
                "ProdBoundary"
            },
            "",
        );
        let role = format!("arn:aws:iam::123456789012:role/{e}-X-1");
        let refused: Vec<Refused> = vec![
            (
                "lambda:UpdateFunctionCode",
                format!("arn:aws:lambda:eu-west-1:123456789012:function:{other}-evaluate-order"),
                vec![],
            ),
            (
                "dynamodb:DeleteTable",
                format!("arn:aws:dynamodb:eu-west-1:123456789012:table/{other}-OrdersTable-1"),
                vec![],
            ),
            (
                "dynamodb:DeleteTable",
                "arn:aws:dynamodb:eu-west-1:123456789012:table/payroll".into(),
                vec![],
            ),
            ("iam:CreateRole", role.clone(), vec![]),
            ("iam:PutRolePolicy", role.clone(), vec![]),
            (
                "iam:AttachRolePolicy",
                role.clone(),
                vec![(
                    "iam:PermissionsBoundary",
                    "arn:aws:iam::aws:policy/AdministratorAccess",
                )],
            ),
            ("iam:DeleteRolePermissionsBoundary", role.clone(), vec![]),
            ("iam:CreatePolicyVersion", boundary.clone(), vec![]),
            ("iam:DeletePolicy", boundary.clone(), vec![]),
            (
                "iam:PassRole",
                role.clone(),
                vec![("iam:PassedToService", "ec2.amazonaws.com")],
            ),
            (
                "iam:PassRole",
                "arn:aws:iam::123456789012:role/admin".into(),
                vec![("iam:PassedToService", "lambda.amazonaws.com")],
            ),
            (
                "secretsmanager:GetSecretValue",
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:payroll-db-AbCdEf".into(),
                vec![],
            ),
            (
                "s3:GetObject",
                format!("arn:aws:s3:::{e}-resultsbucket-1a2b3c/results/x.json"),
                vec![],
            ),
            ("s3:DeleteBucket", "arn:aws:s3:::payroll".into(), vec![]),
            (
                "kms:ScheduleKeyDeletion",
                "arn:aws:kms:eu-west-1:123456789012:key/other".into(),
                vec![("aws:ResourceTag/energy:stack", "payroll")],
            ),
            (
                "sqs:SendMessage",
                format!("arn:aws:sqs:eu-west-1:123456789012:{e}-SweepDlq-1"),
                vec![],
            ),
            (
                "events:PutEvents",
                format!("arn:aws:events:eu-west-1:123456789012:event-bus/{e}"),
                vec![],
            ),
            (
                "lambda:InvokeFunction",
                format!("arn:aws:lambda:eu-west-1:123456789012:function:{e}-evaluate-order"),
                vec![],
            ),
        ];
        for (action, resource, context) in &refused {
            let request = Request {
                action,
                resource,
                context,
            };
            assert!(
                !allows(&statements, &request),
                "{env}: the deploy role may {action} on {resource} {context:?}"
            );
        }
        for s in &statements {
            if s["Effect"] == "Allow" {
                for a in resolve(&s["Action"]) {
                    assert!(!a.ends_with(":*") && a != "*", "{env}: Allow of {a}");
                }
            }
        }
    }
}

#[test]
fn every_role_the_template_creates_carries_the_boundary_and_the_boundary_holds_what_they_do() {
    let t = transformed();
    let p = pipeline();
    let boundary_of = |env: &str| {
        let name = format!("{}{}Boundary", env[..1].to_uppercase(), &env[1..]);
        let props = &p["Resources"][&name]["Properties"];
        // Each environment's file names its own boundary.
        assert_eq!(
            props["ManagedPolicyName"],
            env_file(env)["Parameters"]["PermissionsBoundary"],
            "{env}"
        );
        props.clone()
    };
    // One boundary per environment, alike but for the environment's name: a dev merge cannot
    // make a role that reaches prod.
    let (dev, prod) = (boundary_of("dev"), boundary_of("prod"));
    assert_eq!(
        serde_json::to_string(&dev["PolicyDocument"])
            .unwrap()
            .replace("energy-dev", "energy-prod"),
        serde_json::to_string(&prod["PolicyDocument"]).unwrap()
    );
    let boundary = role_statements(&json!({"Properties": {"Policies": [dev]}}));
    assert!(!boundary.is_empty());
    for (action, resource) in [
        (
            "dynamodb:PutItem",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/energy-prod-OrdersTable-1",
        ),
        (
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:energy-prod/slack-webhook-0f6a2b40-8d1e-11f0-9a3c-0a1b2c3d4e5f-AbCdEf",
        ),
        (
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:payroll-db-AbCdEf",
        ),
        (
            "events:PutEvents",
            "arn:aws:events:eu-west-1:123456789012:event-bus/energy-prod",
        ),
        (
            "s3:PutObject",
            "arn:aws:s3:::energy-prod-resultsbucket-1/results/x.json",
        ),
    ] {
        let request = Request {
            action,
            resource,
            context: &[],
        };
        assert!(
            !allows(&boundary, &request),
            "the dev boundary lets {action} reach {resource}"
        );
    }
    let want = json!({"Fn::If": ["HasBoundary", {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${PermissionsBoundary}"}, {"Ref": "AWS::NoValue"}]});
    for (name, r) in t["Resources"].as_object().unwrap() {
        if r["Type"] != "AWS::IAM::Role" {
            continue;
        }
        assert_eq!(r["Properties"]["PermissionsBoundary"], want, "{name}");
        // What each of its statements allows, on its sample resource, the boundary allows too.
        for s in role_statements(r).iter().filter(|s| s["Effect"] == "Allow") {
            for action in resolve(&s["Action"]) {
                for resource in resolve(&s["Resource"]) {
                    let mut context: Vec<(&str, &str)> = Vec::new();
                    for keys in s["Condition"]
                        .as_object()
                        .into_iter()
                        .flat_map(|o| o.values())
                    {
                        for (k, v) in keys.as_object().unwrap() {
                            let v = v.as_str().or_else(|| v[0].as_str()).unwrap();
                            context.push((k.as_str(), v));
                        }
                    }
                    let request = Request {
                        action: &action,
                        resource: &resource,
                        context: &context,
                    };
                    assert!(
                        allows(&boundary, &request),
                        "{name}: the boundary stops {action} on {resource}"
                    );
                }
            }
        }
        // The managed policies SAM attaches: basic execution and X-Ray.
        for (action, resource) in [
            (
                "logs:CreateLogStream",
                "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/energy-dev-evaluate-order:log-stream:x",
            ),
            (
                "logs:PutLogEvents",
                "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/energy-dev-evaluate-order:log-stream:x",
            ),
            ("xray:PutTraceSegments", "*"),
        ] {
            if name != "SchedulerRole" {
                let request = Request {
                    action,
                    resource,
                    context: &[],
                };
                assert!(
                    allows(&boundary, &request),
                    "{name}: the boundary stops {action}"
                );
            }
        }
    }
}

#[test]
fn the_build_ships_the_bootstraps_its_tests_ran_and_builds_them_for_its_own_architecture() {
    let p = pipeline();
    let build = &p["Resources"]["Build"]["Properties"]["Environment"];
    assert_eq!(
        build["Type"], "ARM_CONTAINER",
        "the build host is arm64, as the functions"
    );
    assert_eq!(
        template()["Globals"]["Function"]["Architectures"],
        json!(["arm64"])
    );
    let buildspec = read("buildspec.yaml");
    let commands: Vec<&str> = buildspec
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("- "))
        .collect();
    let test = commands
        .iter()
        .position(|c| *c == "./scripts/test")
        .expect("the test command");
    let package = commands
        .iter()
        .position(|c| c.starts_with("scripts/package-tested "))
        .expect("scripts/package-tested");
    assert!(test < package, "packaged after the tests");
    assert!(
        !commands
            .iter()
            .any(|c| c.contains("sam build") || c.contains("build-bootstraps")),
        "no second build between the tests and the package: {commands:?}"
    );
    // The test command builds this machine's bootstraps, runs the runtime contract tests on
    // them, and records what it tested; package-tested refuses anything else.
    let test_command = read("scripts/test");
    let built = test_command
        .find("scripts/build-bootstraps\n")
        .expect("builds the bootstraps");
    let recorded = test_command
        .find("sha256sum */bootstrap) > \"$tested\"")
        .expect("records them");
    let tests = test_command
        .find("cargo nextest run --workspace")
        .expect("runs the tests");
    assert!(
        built < tests && tests < recorded,
        "built, tested, then recorded"
    );
    let build_script = read("scripts/build-bootstraps");
    assert!(
        build_script.contains("uname -m"),
        "the host's architecture by default"
    );
    assert!(read("crates/aws/tests/runtime.rs").contains(".join(host_arch())"));
    let package_script = read("scripts/package-tested");
    assert!(package_script.contains("sha256sum --quiet -c tested.sha256"));
    assert!(package_script.contains("CodeUri: ../../target/lambda/{arch}/{function}/"));
}
