//! `template.yaml` is the single source of routing: the in-process bus must route exactly as its
//! rules say, and every rule must select events that exist.

use std::collections::BTreeMap;
use std::path::Path;

use energy_local::routes::RULES;
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
fn the_in_process_bus_routes_exactly_as_the_template_rules_say() {
    let from_template = template_rules();
    let in_code: BTreeMap<String, (Vec<String>, Vec<String>, String)> = RULES
        .iter()
        .map(|r| {
            (
                r.name.to_string(),
                (
                    vec![r.source.to_string()],
                    r.detail_types.iter().map(|s| s.to_string()).collect(),
                    r.target.name().to_string(),
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
