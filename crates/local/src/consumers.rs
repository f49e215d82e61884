//! Local consumers: rules whose targets are HTTP endpoints, like EventBridge API destinations,
//! added by a YAML file next to the template so that a consumer subscribes without touching the
//! template or a handler.
//!
//! ```yaml
//! Rules:
//!   AuditFailures:
//!     Pattern:
//!       source: [energy.orders]
//!       detail-type: [OrderFailed]
//!     Target:
//!       Url: http://127.0.0.1:9000/events
//!       Headers: { x-api-key: local-secret }
//!     RetryPolicy:
//!       MaximumRetryAttempts: 3
//!       MaximumEventAgeInSeconds: 600
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::rules::{self, RetrySpec};
use crate::topology::{RuleTarget, Target, Topology, TopologyError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct File {
    #[serde(default)]
    rules: BTreeMap<String, RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RuleSpec {
    pattern: Value,
    target: TargetSpec,
    #[serde(default)]
    retry_policy: Option<RetrySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct TargetSpec {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// Adds the rules of a consumers file (`origin` names it in errors) to `topology`: each made by
/// [`rules::rule`] as the EventBridge API makes its rules, with one HTTP target (id `http`).
pub fn add(topology: &mut Topology, text: &str, origin: &str) -> Result<usize, TopologyError> {
    let err = |message: String| TopologyError {
        origin: origin.to_string(),
        message,
    };
    let file: File = serde_saphyr::from_str(text).map_err(|e| err(e.to_string()))?;
    let n = file.rules.len();
    for (name, spec) in file.rules {
        if topology.rule(&name).is_some() {
            return Err(err(format!(
                "rule {name}: the template has a rule of that name already"
            )));
        }
        let url = spec.target.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(err(format!(
                "rule {name}: Target.Url {url:?} is not an http:// or https:// URL"
            )));
        }
        let policy = rules::policy(spec.retry_policy.as_ref())
            .map_err(|e| err(format!("rule {name}: {e}")))?;
        let target = RuleTarget {
            id: "http".to_string(),
            target: Target::Http {
                url,
                method: "POST".to_string(),
                headers: spec.target.headers,
                query: Vec::new(),
                basic: None,
            },
            policy,
        };
        let rule = rules::rule(
            &name,
            &spec.pattern,
            true,
            format!("from {origin}"),
            vec![target],
            origin,
        )
        .map_err(|e| err(format!("rule {name}: unsupported pattern: {e}")))?;
        topology.rules.push(rule);
    }
    topology.rules.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_rule_is_added_with_its_policy_and_a_bad_one_names_itself() {
        let mut t = Topology::embedded().unwrap();
        let text = "Rules:\n  Audit:\n    Pattern: {source: [energy.orders]}\n    Target: {Url: 'http://127.0.0.1:9/e'}\n    RetryPolicy: {MaximumRetryAttempts: 3}\n";
        assert_eq!(add(&mut t, text, "c.yaml").unwrap(), 1);
        let r = t.rule("Audit").unwrap();
        assert_eq!(r.targets[0].policy.max_retries, 3);
        assert_eq!(r.origin, "c.yaml");
        let bad = "Rules:\n  Odd:\n    Pattern: {source: [{contains: x}]}\n    Target: {Url: 'http://x'}\n";
        let e = add(&mut t, bad, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("rule Odd") && e.contains("contains"), "{e}");
        let typo = "Rules:\n  T:\n    Pattern: {source: [a]}\n    Target: {Uri: 'http://x'}\n";
        assert!(add(&mut t, typo, "c.yaml").is_err());
    }
}
