//! Which function each event goes to: the rules of `template.yaml`, written out for the
//! in-process bus. `tests/template.rs` checks that the template's rules say the same.

use serde_json::Value;

/// The event-driven functions (submit-order is behind the HTTP API, not the bus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    EvaluateOrder,
    StoreResult,
    NotifySlack,
    SweepPending,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Function::EvaluateOrder => "evaluate-order",
            Function::StoreResult => "store-result",
            Function::NotifySlack => "notify-slack",
            Function::SweepPending => "sweep-pending",
        }
    }
}

/// One rule: the event `source`, the detail-types it selects, and its target. (The pipeline rule
/// also asks for `detail.state` FAILED; notify-slack ignores the other states.)
pub struct Rule {
    pub name: &'static str,
    pub source: &'static str,
    pub detail_types: &'static [&'static str],
    pub target: Function,
}

/// The rules, as in `template.yaml`.
pub const RULES: &[Rule] = &[
    Rule {
        name: "EvaluateOrderRule",
        source: energy_core::events::SOURCE,
        detail_types: &["OrderSubmitted", "OrderEvaluationDue"],
        target: Function::EvaluateOrder,
    },
    Rule {
        name: "StoreResultRule",
        source: energy_core::events::SOURCE,
        detail_types: &["OrderReady"],
        target: Function::StoreResult,
    },
    Rule {
        name: "NotifySlackRule",
        source: energy_core::events::SOURCE,
        detail_types: &["OrderFailed"],
        target: Function::NotifySlack,
    },
    Rule {
        name: "PipelineFailedRule",
        source: "aws.codepipeline",
        detail_types: &[notify_slack::PIPELINE_STATE],
        target: Function::NotifySlack,
    },
    Rule {
        name: "ProcessingErrorRule",
        source: "lambda",
        detail_types: &[notify_slack::LAMBDA_FAILURE],
        target: Function::NotifySlack,
    },
];

/// The functions an event is delivered to.
pub fn targets(envelope: &Value) -> Vec<Function> {
    let source = envelope["source"].as_str().unwrap_or_default();
    let detail_type = envelope["detail-type"].as_str().unwrap_or_default();
    if source == "aws.events" && detail_type == "Scheduled Event" {
        return vec![Function::SweepPending];
    }
    RULES
        .iter()
        .filter(|r| r.source == source && r.detail_types.contains(&detail_type))
        .map(|r| r.target)
        .collect()
}
