//! The price table (`bench/prices-eu-west-1.json`) and the deployment facts the bill depends on,
//! read from template.yaml: each function's memory and architecture, the sweep's rate, the API
//! access log format, and the resources billed by the month.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

pub type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

/// One price: `usd` for `per` units.
#[derive(Debug, Clone)]
pub struct Price {
    pub usd: f64,
    pub per: f64,
    pub unit: String,
    pub status: String,
}

impl Price {
    /// Dollars for one unit.
    pub fn each(&self) -> f64 {
        self.usd / self.per
    }
}

/// The table, by key.
#[derive(Debug, Clone)]
pub struct Prices {
    pub region: String,
    pub read_on: String,
    pub by_key: BTreeMap<String, Price>,
}

impl Prices {
    pub fn read(path: &Path) -> Fallible<Prices> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the price table {}: {e}", path.display()))?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        let field = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
        let mut by_key = BTreeMap::new();
        for (key, p) in doc["prices"].as_object().into_iter().flatten() {
            let (Some(usd), Some(per)) = (p["usd"].as_f64(), p["per"].as_f64()) else {
                return Err(format!("price {key} needs numbers usd and per").into());
            };
            let status = field(p, "status");
            if field(p, "source").is_empty() || status.is_empty() || field(p, "read_on").is_empty()
            {
                return Err(format!("price {key} needs its source, status and read_on").into());
            }
            by_key.insert(
                key.clone(),
                Price {
                    usd,
                    per,
                    unit: field(p, "unit"),
                    status,
                },
            );
        }
        Ok(Prices {
            region: field(&doc, "region"),
            read_on: field(&doc, "read_on"),
            by_key,
        })
    }

    pub fn get(&self, key: &str) -> Fallible<&Price> {
        self.by_key
            .get(key)
            .ok_or_else(|| format!("the price table has no {key:?}").into())
    }
}

/// What template.yaml says that the bill depends on.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Memory (MB) by function (binary) name.
    pub memory_mb: BTreeMap<String, u32>,
    pub architecture: String,
    pub access_log_format: String,
    pub sweep_every_minutes: u32,
    /// Globals' `LoggingConfig.SystemLogLevel` (Lambda's default INFO when absent): at WARN,
    /// Lambda writes no `platform.start` and `platform.report` records of a good invocation.
    pub system_log_level: String,
    pub alarms: usize,
    pub kms_keys: usize,
    pub secrets: usize,
}

impl Deployment {
    /// A line scan, not a YAML parser: SAM's short-form tags (`!Ref`, `!Sub`) are not YAML a
    /// plain parser reads, and these few facts sit at known indents.
    pub fn read(path: &Path) -> Fallible<Deployment> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut section = "";
        let mut resource = "";
        let mut global_memory = None;
        let mut architecture = String::from("x86_64");
        let mut binaries: BTreeMap<String, String> = BTreeMap::new();
        let mut own_memory: BTreeMap<String, u32> = BTreeMap::new();
        let mut access_log_format = String::new();
        let mut sweep = 2;
        let mut system_log_level = String::from("INFO");
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for line in text.lines() {
            let indent = line.len() - line.trim_start().len();
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if indent == 0 {
                section = t.trim_end_matches(':');
                continue;
            }
            if indent == 2 && t.ends_with(':') {
                resource = t.trim_end_matches(':');
                continue;
            }
            let value = |key: &str| t.strip_prefix(key).map(str::trim);
            match section {
                "Globals" => {
                    if let Some(v) = value("MemorySize:") {
                        global_memory = v.parse().ok();
                    }
                    if let Some(v) = value("SystemLogLevel:") {
                        system_log_level = v.to_string();
                    }
                    if let Some(v) = value("Architectures:") {
                        architecture = v.trim_matches(['[', ']', ' ']).to_string();
                    }
                }
                "Parameters" if resource == "SweepSchedule" => {
                    if let Some(v) = value("Default:") {
                        sweep = rate_minutes(v).unwrap_or(sweep);
                    }
                }
                "Resources" => {
                    if let Some(v) = value("Type:").filter(|_| indent == 4) {
                        *counts.entry(v.to_string()).or_default() += 1;
                    }
                    if let Some(v) = value("Binary:") {
                        binaries.insert(resource.to_string(), v.to_string());
                    }
                    if let Some(v) = value("MemorySize:").filter(|_| indent == 6) {
                        own_memory.insert(resource.to_string(), v.parse()?);
                    }
                    if let Some(v) = value("Format:") {
                        access_log_format = v.trim_matches('\'').to_string();
                    }
                }
                _ => {}
            }
        }
        let global = global_memory.unwrap_or(128);
        let memory_mb = binaries
            .iter()
            .map(|(res, bin)| (bin.clone(), own_memory.get(res).copied().unwrap_or(global)))
            .collect();
        let count = |t: &str| counts.get(t).copied().unwrap_or(0);
        Ok(Deployment {
            system_log_level,
            memory_mb,
            architecture,
            access_log_format,
            sweep_every_minutes: sweep,
            alarms: count("AWS::CloudWatch::Alarm"),
            kms_keys: count("AWS::KMS::Key"),
            secrets: count("AWS::SecretsManager::Secret"),
        })
    }

    pub fn memory(&self, function: &str) -> Fallible<u32> {
        self.memory_mb
            .get(function)
            .copied()
            .ok_or_else(|| format!("template.yaml has no function built from {function}").into())
    }

    /// One access log line as API Gateway would write it for a `POST /orders`: the template's
    /// format with typical values in place of the `$context` variables.
    pub fn sample_access_log(&self) -> String {
        let sample = |var: &str| match var {
            "requestId" => "ZfQ9bhx2DoEEJfA=",
            "identity.sourceIp" => "203.0.113.24",
            "httpMethod" => "POST",
            "routeKey" => "POST /orders",
            "status" => "202",
            "responseLatency" => "41",
            _ => "-",
        };
        let mut out = String::new();
        let mut rest = self.access_log_format.as_str();
        while let Some(at) = rest.find("$context.") {
            out.push_str(&rest[..at]);
            let after = &rest[at + "$context.".len()..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
                .unwrap_or(after.len());
            out.push_str(sample(&after[..end]));
            rest = &after[end..];
        }
        out.push_str(rest);
        out
    }
}

/// `rate(2 minutes)` → 2.
fn rate_minutes(expr: &str) -> Option<u32> {
    let inner = expr.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.split_once(' ')?;
    let n: u32 = n.parse().ok()?;
    match unit {
        "minute" | "minutes" => Some(n),
        "hour" | "hours" => Some(n * 60),
        _ => None,
    }
}
