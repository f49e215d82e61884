//! `template.yaml` is the single source of routing: the in-process bus must route exactly as its
//! rules say, and every rule must select events that exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use energy_local::topology::{Target, Topology};
use energy_patterns::Pattern;
use serde_json::Value;

fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Rule name → (sources, detail-types, target binary), from the functions' EventBridgeRule events.
fn template_rules() -> BTreeMap<String, (Vec<String>, Vec<String>, String)> {
    let t = template();
    let mut out = BTreeMap::new();
    for resource in t["Resources"].as_object().unwrap().values() {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap()
            .to_string();
        for (name, event) in resource["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if event["Type"] == "EventBridgeRule" {
                let pattern = &event["Properties"]["Pattern"];
                out.insert(
                    name.clone(),
                    (
                        strings(&pattern["source"]),
                        strings(&pattern["detail-type"]),
                        binary.clone(),
                    ),
                );
            }
        }
    }
    out
}

#[test]
fn the_local_bus_has_exactly_the_template_rules_with_their_patterns_and_targets() {
    let from_template = template_rules();
    let topology = Topology::embedded().unwrap();
    let in_code: BTreeMap<String, (Vec<String>, Vec<String>, String)> = topology
        .rules
        .iter()
        .map(|r| {
            let target = match &r.target {
                Target::Function(f) => f.name().to_string(),
                other => panic!("{}: {other:?}", r.name),
            };
            (
                r.name.clone(),
                (
                    strings(&r.pattern_json["source"]),
                    strings(&r.pattern_json["detail-type"]),
                    target,
                ),
            )
        })
        .collect();
    assert_eq!(from_template, in_code);
}

#[test]
fn every_consumed_detail_type_of_ours_has_a_schema_and_every_schema_but_the_hook_has_a_consumer() {
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events-schema");
    let mut consumed: Vec<String> = template_rules()
        .into_values()
        .filter(|(sources, _, _)| sources == &["energy.orders"])
        .flat_map(|(_, types, _)| types)
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
    all.retain(|t| t != "OrderResultStored");
    all.sort();
    assert_eq!(consumed, all);
}

#[test]
fn the_sweeper_runs_on_the_sweep_schedule_parameter() {
    let t = template();
    let sweep = &t["Resources"]["SweepPendingFunction"]["Properties"]["Events"]["SweepSchedule"];
    assert_eq!(sweep["Type"], "Schedule");
    assert_eq!(
        t["Parameters"]["SweepSchedule"]["Default"],
        "rate(2 minutes)"
    );
}

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_registry_schemas_in_the_template_equal_the_files_in_events_schema() {
    let t = template();
    let mut in_template = BTreeMap::new();
    for resource in t["Resources"].as_object().unwrap().values() {
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

#[test]
fn every_function_builds_a_handler_crate_and_every_rule_targets_a_function() {
    let t = template();
    let resources = t["Resources"].as_object().unwrap();
    for (name, resource) in resources {
        if resource["Type"] == "AWS::Serverless::Function" {
            let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap();
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
        }
        if resource["Type"] == "AWS::Events::Rule" {
            for target in resource["Properties"]["Targets"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let arn = &target["Arn"];
                let logical = arn["Fn::GetAtt"][0]
                    .as_str()
                    .or_else(|| arn.as_str())
                    .unwrap_or_default();
                assert!(
                    resources.contains_key(logical.trim_end_matches(".Arn")),
                    "rule {name} targets {arn}"
                );
            }
        }
    }
}

/// The detail-types the handler code constructs, found in its source.
fn emitted_detail_types() -> BTreeSet<String> {
    let variants = [
        ("DomainEvent::Submitted(", "OrderSubmitted"),
        ("DomainEvent::EvaluationDue(", "OrderEvaluationDue"),
        ("DomainEvent::Ready(", "OrderReady"),
        ("DomainEvent::Failed(", "OrderFailed"),
        ("DomainEvent::ResultStored(", "OrderResultStored"),
    ];
    let mut sources = vec![root().join("crates/core/src/handler.rs")];
    for h in [
        "submit-order",
        "evaluate-order",
        "store-result",
        "notify-slack",
        "sweep-pending",
    ] {
        sources.push(root().join("handlers").join(h).join("src/lib.rs"));
    }
    let text: String = sources
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    variants
        .iter()
        .filter(|(v, _)| text.contains(v))
        .map(|(_, t)| t.to_string())
        .collect()
}

#[test]
fn every_detail_type_a_handler_emits_has_a_schema() {
    let emitted = emitted_detail_types();
    assert_eq!(emitted.len(), 5, "{emitted:?}");
    for t in emitted {
        assert!(
            root().join(format!("events-schema/{t}.json")).exists(),
            "{t} is emitted but has no schema"
        );
    }
}

#[test]
fn each_consumer_pattern_matches_its_schema_example_event_and_no_other() {
    let t = template();
    let examples_dir = root().join("events-schema/examples");
    let examples: Vec<(String, Value)> = std::fs::read_dir(&examples_dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap(),
            )
        })
        .collect();
    for resource in t["Resources"].as_object().unwrap().values() {
        for (rule, event) in resource["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if event["Type"] != "EventBridgeRule" {
                continue;
            }
            let pattern = &event["Properties"]["Pattern"];
            if pattern["source"] != serde_json::json!(["energy.orders"]) {
                continue;
            }
            for (name, example) in &examples {
                let selected = strings(&pattern["detail-type"])
                    .contains(&example["detail-type"].as_str().unwrap().to_string());
                let compiled = Pattern::compile(pattern).unwrap();
                assert_eq!(compiled.matches(example), selected, "{rule} and {name}");
            }
        }
    }
}

#[test]
fn no_policy_grants_every_action_or_every_resource_but_the_commented_tls_deny() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    for (n, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or("");
        if code.contains("\"*\"") || code.contains("'*'") || code.contains("\"s3:*\"") {
            assert!(
                line.contains(" # "),
                "line {}: a wildcard without the comment that justifies it: {line}",
                n + 1
            );
        }
        if code.trim_start().starts_with("Resource: \"*\"")
            || code.trim_start().starts_with("Action: \"*\"")
        {
            panic!("line {}: {line}", n + 1);
        }
    }
}
