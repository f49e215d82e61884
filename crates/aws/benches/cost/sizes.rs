//! DynamoDB's size rules, as its developer guide states them: an item's size, the read and
//! write units a size costs, and what a write does to the sparse `due` index.

use serde_json::{Map, Value};

/// The attributes of the `due` index, as template.yaml declares it: its keys, and what it
/// projects besides them and the table's key.
const INDEX_KEYS: [&str; 2] = ["due_shard", "due_at"];
const INDEX_PROJECTED: [&str; 3] = ["record_id", "attempt", "sweeps"];
/// DynamoDB's per-item overhead in an index entry.
const INDEX_ENTRY_OVERHEAD: u64 = 100;

/// What the meter knows of a stored item.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub size: u64,
    pub index: Option<IndexEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    key: String,
    projected: String,
    size: u64,
}

pub fn item_key(item: &Map<String, Value>) -> String {
    item.get("record_id")
        .and_then(|v| v["S"].as_str())
        .unwrap_or_default()
        .to_string()
}

pub fn shape(item: &Map<String, Value>) -> Shape {
    let in_index = INDEX_KEYS.iter().all(|k| item.contains_key(*k));
    let index = in_index.then(|| {
        let attrs = |names: &[&str]| -> String {
            names
                .iter()
                .map(|n| item.get(*n).map(Value::to_string).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("|")
        };
        let size = INDEX_KEYS
            .iter()
            .chain(INDEX_PROJECTED.iter())
            .filter_map(|n| item.get(*n).map(|v| attribute_size(n, v)))
            .sum::<u64>()
            + INDEX_ENTRY_OVERHEAD;
        IndexEntry {
            key: attrs(&INDEX_KEYS),
            projected: attrs(&INDEX_PROJECTED),
            size,
        }
    });
    Shape {
        size: item_size(item),
        index,
    }
}

/// Index write units for an item whose entry goes from `old` to `new`: a put when it enters, a
/// delete when it leaves, both when its key changes, a put when only a projected value changes.
pub fn index_writes(old: Option<&IndexEntry>, new: Option<&IndexEntry>) -> u64 {
    match (old, new) {
        (None, None) => 0,
        (None, Some(n)) => write_units(n.size),
        (Some(o), None) => write_units(o.size),
        (Some(o), Some(n)) if o.key != n.key => write_units(o.size) + write_units(n.size),
        (Some(o), Some(n)) if o.projected != n.projected => write_units(n.size),
        _ => 0,
    }
}

pub fn write_units(size: u64) -> u64 {
    size.div_ceil(1024).max(1)
}

pub fn read_halves(size: u64, consistent: bool) -> u64 {
    size.div_ceil(4096).max(1) * if consistent { 2 } else { 1 }
}

/// An item's size as DynamoDB counts it: each attribute's name and value.
pub fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter().map(|(n, v)| attribute_size(n, v)).sum()
}

fn attribute_size(name: &str, value: &Value) -> u64 {
    name.len() as u64 + value_size(value)
}

fn value_size(value: &Value) -> u64 {
    let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let strings = || v.as_array().into_iter().flatten().filter_map(Value::as_str);
    match kind.as_str() {
        "S" => v.as_str().map_or(0, str::len) as u64,
        "N" => number_size(v.as_str().unwrap_or("0")),
        "B" => base64_len(v.as_str().unwrap_or_default()),
        "BOOL" | "NULL" => 1,
        "SS" => strings().map(|s| s.len() as u64).sum(),
        "NS" => strings().map(number_size).sum(),
        "BS" => strings().map(base64_len).sum(),
        "M" => {
            3 + v
                .as_object()
                .map_or(0, |m| m.iter().map(|(n, x)| attribute_size(n, x) + 1).sum())
        }
        "L" => {
            3 + v
                .as_array()
                .map_or(0, |l| l.iter().map(|x| value_size(x) + 1).sum())
        }
        _ => 0,
    }
}

/// A number's size: one byte per two significant digits, plus one.
fn number_size(n: &str) -> u64 {
    let digits: String = n
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.div_ceil(2) + 1
}

fn base64_len(s: &str) -> u64 {
    let padding = s.bytes().rev().take_while(|b| *b == b'=').count() as u64;
    (s.len() as u64 * 3 / 4).saturating_sub(padding)
}
