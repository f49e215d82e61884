//! EventBridge event patterns: compiled once, matched against events as `serde_json::Value`.
//!
//! ```
//! use energy_patterns::Pattern;
//! use serde_json::json;
//!
//! let pattern = Pattern::compile(&json!({
//!     "detail-type": ["OrderFailed"],
//!     "detail": {"zone": [{"prefix": "DE"}], "error": {"code": [{"exists": false}]}}
//! }))?;
//! assert!(pattern.matches(&json!({"detail-type": "OrderFailed", "detail": {"zone": "DE-LU"}})));
//! assert!(!pattern.matches(&json!({"detail-type": "OrderFailed", "detail": {"zone": "FR"}})));
//! # Ok::<(), energy_patterns::PatternError>(())
//! ```
//!
//! Usable on its own: it depends on `serde_json` alone. The semantics are those of the
//! EventBridge user guide ("Event patterns", "Content filtering", "Comparison operators"),
//! pinned by `tests/conformance.rs`: a pattern is an object whose keys name
//! fields of the event; an object value descends into that field, an array value lists matchers
//! of which one must match. An event field that is an array matches if any element does. The
//! matchers are exact values (strings, numbers, booleans, null), `prefix` and `suffix` (also with
//! `equals-ignore-case`), `anything-but` (a value, a list of values, `prefix`, `suffix`,
//! `equals-ignore-case`, `wildcard`), `numeric` ranges, `exists`, `equals-ignore-case`,
//! `wildcard`, `cidr`; `$or` lists alternatives at any level. A field the event lacks, or whose
//! parent is missing or is not an object, does not exist: only `{"exists": false}` matches it, at
//! any depth (`{"detail": {"error": {"code": [{"exists": false}]}}}` matches an event whose
//! `detail` has no `error`).
//!
//! What EventBridge refuses is refused here too, as a [`PatternError`] naming the place in the
//! pattern: a bare value where an array of matchers belongs, an empty array, an unknown operator
//! (`contains`), a `numeric` range with two lower or two upper bounds or a non-number, a wildcard
//! with consecutive `*`, a bad CIDR block, `anything-but` of an operator it does not take, an
//! `exists` that is not a boolean, a `$or` with fewer than two alternatives, an empty pattern.
//!
//! The `quamina` crate (0.7) was evaluated first against the guide's examples: it has no
//! `anything-but` with `prefix`, `suffix` or `wildcard`, and no `$or`, all of which the guide
//! documents, so this small matcher is ours. Anything it does not know is an error that says
//! where, never a silent "no match".

use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value};

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    root: Node,
}

/// Why a pattern cannot be compiled; `path` is where in the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for PatternError {}

/// An object level: every field must match, and one of each `$or` group's alternatives.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    fields: Vec<(String, Field)>,
    or: Vec<Vec<Node>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Nested(Node),
    /// One of these must match.
    Leaf(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Exact(Value),
    Prefix(String),
    PrefixIgnoreCase(String),
    Suffix(String),
    SuffixIgnoreCase(String),
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    /// None of these values (strings or numbers).
    AnythingBut(Vec<Value>),
    AnythingButPrefix(String),
    AnythingButSuffix(String),
    AnythingButIgnoreCase(Vec<String>),
    AnythingButWildcard(Vec<Wildcard>),
    Numeric(Vec<(Cmp, f64)>),
    Exists(bool),
    Cidr(Cidr),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
struct Cidr {
    net: IpAddr,
    bits: u8,
}

/// A wildcard pattern split on its unescaped `*`.
#[derive(Debug, Clone, PartialEq)]
struct Wildcard {
    parts: Vec<String>,
}

fn err(path: &str, message: impl Into<String>) -> PatternError {
    PatternError {
        path: path.to_string(),
        message: message.into(),
    }
}

impl Pattern {
    /// Compiles a pattern given as JSON text.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| err("", format!("the pattern is not JSON: {e}")))?;
        Pattern::compile(&value)
    }

    /// Compiles a pattern given as a JSON value.
    pub fn compile(value: &Value) -> Result<Pattern, PatternError> {
        let Value::Object(map) = value else {
            return Err(err("", "a pattern is a JSON object"));
        };
        if map.is_empty() {
            return Err(err("", "a pattern must name at least one field"));
        }
        Ok(Pattern {
            root: node(map, "")?,
        })
    }

    /// Whether `event` matches.
    pub fn matches(&self, event: &Value) -> bool {
        self.root.matches(event)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn node(map: &Map<String, Value>, path: &str) -> Result<Node, PatternError> {
    let mut out = Node {
        fields: Vec::new(),
        or: Vec::new(),
    };
    for (key, value) in map {
        let here = join(path, key);
        if key == "$or" {
            let Value::Array(alternatives) = value else {
                return Err(err(&here, "$or takes an array of patterns"));
            };
            if alternatives.len() < 2 {
                return Err(err(&here, "$or needs at least two alternatives"));
            }
            let mut group = Vec::new();
            for (i, alternative) in alternatives.iter().enumerate() {
                let at = format!("{here}[{i}]");
                match alternative {
                    Value::Object(m) if !m.is_empty() => group.push(node(m, &at)?),
                    _ => return Err(err(&at, "each $or alternative is a non-empty object")),
                }
            }
            out.or.push(group);
            continue;
        }
        let field = match value {
            Value::Object(m) if m.is_empty() => {
                return Err(err(&here, "an empty object matches nothing"));
            }
            Value::Object(m) => Field::Nested(node(m, &here)?),
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(err(&here, "an empty list of values matches nothing"));
                }
                let mut matchers = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    matchers.push(matcher(item, &format!("{here}[{i}]"))?);
                }
                Field::Leaf(matchers)
            }
            other => {
                return Err(err(
                    &here,
                    format!("match values are given in an array, as [{other}]"),
                ));
            }
        };
        out.fields.push((key.clone(), field));
    }
    Ok(out)
}

fn string_of<'a>(v: &'a Value, path: &str, op: &str) -> Result<&'a str, PatternError> {
    v.as_str()
        .ok_or_else(|| err(path, format!("{op} takes a string, not {v}")))
}

fn strings_of(v: &Value, path: &str, op: &str) -> Result<Vec<String>, PatternError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| string_of(i, path, op).map(str::to_string))
            .collect(),
        _ => Err(err(
            path,
            format!("{op} takes a string or a list of strings"),
        )),
    }
}

fn matcher(item: &Value, path: &str) -> Result<Matcher, PatternError> {
    let map = match item {
        Value::Object(map) => map,
        Value::Array(_) => return Err(err(path, "a nested array is not a match value")),
        exact => return Ok(Matcher::Exact(exact.clone())),
    };
    if map.len() != 1 {
        return Err(err(path, "a comparison object holds exactly one operator"));
    }
    let (op, arg) = map.iter().next().expect("one entry");
    let at = join(path, op);
    Ok(match op.as_str() {
        "prefix" | "suffix" => {
            let (text, ignore_case) = match arg {
                Value::String(s) => (s.clone(), false),
                Value::Object(m) if m.len() == 1 && m.contains_key("equals-ignore-case") => (
                    string_of(&m["equals-ignore-case"], &at, "equals-ignore-case")?.to_string(),
                    true,
                ),
                _ => {
                    return Err(err(
                        &at,
                        format!("{op} takes a string or {{\"equals-ignore-case\": string}}"),
                    ));
                }
            };
            match (op.as_str(), ignore_case) {
                ("prefix", false) => Matcher::Prefix(text),
                ("prefix", true) => Matcher::PrefixIgnoreCase(text.to_lowercase()),
                ("suffix", false) => Matcher::Suffix(text),
                _ => Matcher::SuffixIgnoreCase(text.to_lowercase()),
            }
        }
        "equals-ignore-case" => Matcher::EqualsIgnoreCase(string_of(arg, &at, op)?.to_lowercase()),
        "wildcard" => Matcher::Wildcard(Wildcard::parse(string_of(arg, &at, op)?, &at)?),
        "anything-but" => anything_but(arg, &at)?,
        "numeric" => Matcher::Numeric(numeric(arg, &at)?),
        "exists" => match arg {
            Value::Bool(b) => Matcher::Exists(*b),
            _ => return Err(err(&at, "exists takes true or false")),
        },
        "cidr" => Matcher::Cidr(Cidr::parse(string_of(arg, &at, op)?, &at)?),
        other => {
            return Err(err(
                path,
                format!(
                    "unsupported operator {other:?} (supported: prefix, suffix, anything-but, \
                     numeric, exists, equals-ignore-case, wildcard, cidr)"
                ),
            ));
        }
    })
}

fn anything_but(arg: &Value, at: &str) -> Result<Matcher, PatternError> {
    Ok(match arg {
        Value::String(_) | Value::Number(_) => Matcher::AnythingBut(vec![arg.clone()]),
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                if !(item.is_string() || item.is_number()) {
                    return Err(err(
                        &format!("{at}[{i}]"),
                        "anything-but lists strings or numbers",
                    ));
                }
            }
            Matcher::AnythingBut(items.clone())
        }
        Value::Object(m) if m.len() == 1 => {
            let (op, inner) = m.iter().next().expect("one entry");
            let here = join(at, op);
            match op.as_str() {
                "prefix" => Matcher::AnythingButPrefix(string_of(inner, &here, op)?.to_string()),
                "suffix" => Matcher::AnythingButSuffix(string_of(inner, &here, op)?.to_string()),
                "equals-ignore-case" => Matcher::AnythingButIgnoreCase(
                    strings_of(inner, &here, op)?
                        .into_iter()
                        .map(|s| s.to_lowercase())
                        .collect(),
                ),
                "wildcard" => Matcher::AnythingButWildcard(
                    strings_of(inner, &here, op)?
                        .iter()
                        .map(|s| Wildcard::parse(s, &here))
                        .collect::<Result<_, _>>()?,
                ),
                other => {
                    return Err(err(
                        at,
                        format!(
                            "anything-but does not take {other:?} (it takes a value, a list, \
                             prefix, suffix, equals-ignore-case or wildcard)"
                        ),
                    ));
                }
            }
        }
        _ => {
            return Err(err(
                at,
                "anything-but takes a string, a number, a list of them, or one of prefix, \
                 suffix, equals-ignore-case, wildcard",
            ));
        }
    })
}

fn numeric(arg: &Value, at: &str) -> Result<Vec<(Cmp, f64)>, PatternError> {
    let Value::Array(items) = arg else {
        return Err(err(at, "numeric takes [op, number, ...]"));
    };
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return Err(err(
            at,
            "numeric takes one or two comparisons: [\">\", 0, \"<=\", 5]",
        ));
    }
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let cmp = match pair[0].as_str() {
            Some("=") => Cmp::Eq,
            Some("<") => Cmp::Lt,
            Some("<=") => Cmp::Le,
            Some(">") => Cmp::Gt,
            Some(">=") => Cmp::Ge,
            _ => {
                return Err(err(
                    at,
                    format!("{} is not one of =, <, <=, >, >=", pair[0]),
                ));
            }
        };
        let n = pair[1]
            .as_f64()
            .ok_or_else(|| err(at, format!("{} is not a number", pair[1])))?;
        out.push((cmp, n));
    }
    let lower = out
        .iter()
        .filter(|(c, _)| matches!(c, Cmp::Gt | Cmp::Ge))
        .count();
    let upper = out
        .iter()
        .filter(|(c, _)| matches!(c, Cmp::Lt | Cmp::Le))
        .count();
    let eq = out.iter().filter(|(c, _)| *c == Cmp::Eq).count();
    if lower > 1 || upper > 1 || (eq > 0 && out.len() > 1) {
        return Err(err(
            at,
            "numeric takes at most one lower and one upper bound, or one =",
        ));
    }
    Ok(out)
}

impl Wildcard {
    fn parse(s: &str, at: &str) -> Result<Wildcard, PatternError> {
        let mut parts = vec![String::new()];
        let mut chars = s.chars().peekable();
        let mut last_star = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e @ ('*' | '\\')) => {
                        parts.last_mut().expect("non-empty").push(e);
                        last_star = false;
                    }
                    _ => {
                        return Err(err(at, format!("{s:?}: a backslash escapes only * or \\")));
                    }
                },
                '*' => {
                    if last_star {
                        return Err(err(
                            at,
                            format!("{s:?}: consecutive wildcard characters are not allowed"),
                        ));
                    }
                    parts.push(String::new());
                    last_star = true;
                }
                c => {
                    parts.last_mut().expect("non-empty").push(c);
                    last_star = false;
                }
            }
        }
        Ok(Wildcard { parts })
    }

    fn matches(&self, s: &str) -> bool {
        let parts = &self.parts;
        if parts.len() == 1 {
            return s == parts[0];
        }
        let (first, last) = (&parts[0], &parts[parts.len() - 1]);
        if s.len() < first.len() + last.len() || !s.starts_with(first.as_str()) {
            return false;
        }
        if !s.ends_with(last.as_str()) {
            return false;
        }
        let mut rest = &s[first.len()..s.len() - last.len()];
        for middle in &parts[1..parts.len() - 1] {
            match rest.find(middle.as_str()) {
                Some(i) => rest = &rest[i + middle.len()..],
                None => return false,
            }
        }
        true
    }
}

impl Cidr {
    fn parse(s: &str, at: &str) -> Result<Cidr, PatternError> {
        let bad = || err(at, format!("{s:?} is not a CIDR block such as 10.0.0.0/24"));
        let (ip, bits) = s.split_once('/').ok_or_else(bad)?;
        let net: IpAddr = ip.parse().map_err(|_| bad())?;
        let bits: u8 = bits.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(bad());
        }
        Ok(Cidr { net, bits })
    }

    fn contains(&self, s: &str) -> bool {
        let Ok(ip) = s.parse::<IpAddr>() else {
            return false;
        };
        let (a, b, width) = match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (
                u128::from(u32::from(n)) << 96,
                u128::from(u32::from(i)) << 96,
                32,
            ),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        let _ = width;
        if self.bits == 0 {
            return true;
        }
        let mask = u128::MAX << (128 - u32::from(self.bits));
        a & mask == b & mask
    }
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn ends_with_ignore_case(s: &str, suffix_lower: &str) -> bool {
    let lower = s.to_lowercase();
    lower.ends_with(suffix_lower)
}

impl Matcher {
    /// Whether one scalar (or null) value of the event matches.
    fn matches_scalar(&self, v: &Value) -> bool {
        let s = v.as_str();
        match self {
            Matcher::Exact(e) => numbers_equal(e, v),
            Matcher::Prefix(p) => s.is_some_and(|s| s.starts_with(p.as_str())),
            Matcher::PrefixIgnoreCase(p) => {
                s.is_some_and(|s| s.to_lowercase().starts_with(p.as_str()))
            }
            Matcher::Suffix(p) => s.is_some_and(|s| s.ends_with(p.as_str())),
            Matcher::SuffixIgnoreCase(p) => s.is_some_and(|s| ends_with_ignore_case(s, p)),
            Matcher::EqualsIgnoreCase(p) => s.is_some_and(|s| s.to_lowercase() == *p),
            Matcher::Wildcard(w) => s.is_some_and(|s| w.matches(s)),
            // anything-but "matches anything except what's provided": a present null, number or
            // boolean is not a string with that prefix, suffix, spelling or shape, so it matches.
            Matcher::AnythingBut(values) => !values.iter().any(|x| numbers_equal(x, v)),
            Matcher::AnythingButPrefix(p) => !s.is_some_and(|s| s.starts_with(p.as_str())),
            Matcher::AnythingButSuffix(p) => !s.is_some_and(|s| s.ends_with(p.as_str())),
            Matcher::AnythingButIgnoreCase(values) => {
                !s.is_some_and(|s| values.contains(&s.to_lowercase()))
            }
            Matcher::AnythingButWildcard(ws) => !s.is_some_and(|s| ws.iter().any(|w| w.matches(s))),
            Matcher::Numeric(cmps) => v.as_f64().is_some_and(|n| {
                cmps.iter().all(|(c, x)| match c {
                    Cmp::Eq => n == *x,
                    Cmp::Lt => n < *x,
                    Cmp::Le => n <= *x,
                    Cmp::Gt => n > *x,
                    Cmp::Ge => n >= *x,
                })
            }),
            Matcher::Exists(_) => unreachable!("exists is decided on the field"),
            Matcher::Cidr(c) => s.is_some_and(|s| c.contains(s)),
        }
    }
}

/// The leaf values of an event field: the value itself, or each element of an array.
fn leaves(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().flat_map(leaves).collect(),
        other => vec![other],
    }
}

impl Node {
    fn matches(&self, event: &Value) -> bool {
        match event {
            Value::Array(items) if !items.is_empty() => items.iter().any(|e| self.matches(e)),
            Value::Object(map) => {
                self.fields
                    .iter()
                    .all(|(key, field)| field.matches(map.get(key)))
                    && self
                        .or
                        .iter()
                        .all(|group| group.iter().any(|alternative| alternative.matches(event)))
            }
            // Not an object: none of the fields below exist.
            _ => self.matches_absent(),
        }
    }

    /// Whether this level matches where the event has nothing: only `exists: false` can.
    fn matches_absent(&self) -> bool {
        self.fields.iter().all(|(_, field)| field.matches(None))
            && self
                .or
                .iter()
                .all(|group| group.iter().any(Node::matches_absent))
    }
}

impl Field {
    fn matches(&self, value: Option<&Value>) -> bool {
        match self {
            Field::Nested(node) => match value {
                Some(v) => node.matches(v),
                None => node.matches_absent(),
            },
            Field::Leaf(matchers) => matchers.iter().any(|m| match (m, value) {
                (Matcher::Exists(want), v) => {
                    let present = v.is_some_and(|v| !v.is_object() && !leaves(v).is_empty());
                    present == *want
                }
                (_, None) => false,
                (_, Some(Value::Object(_))) => false,
                (m, Some(v)) => leaves(v)
                    .into_iter()
                    .any(|leaf| !leaf.is_object() && m.matches_scalar(leaf)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_split_on_unescaped_stars() {
        let w = Wildcard::parse(r"a*b\*c*", "").unwrap();
        assert!(w.matches("aXXb*cYY"));
        assert!(!w.matches("aXXbcYY"));
        assert!(Wildcard::parse("a**b", "").is_err());
        assert!(Wildcard::parse("*", "").unwrap().matches(""));
    }

    #[test]
    fn cidr_blocks_hold_their_addresses() {
        let c = Cidr::parse("10.0.0.0/24", "").unwrap();
        assert!(c.contains("10.0.0.255") && !c.contains("10.0.1.0") && !c.contains("::1"));
        let v6 = Cidr::parse("2001:db8::/32", "").unwrap();
        assert!(v6.contains("2001:db8::1") && !v6.contains("2001:db9::1"));
    }

    #[test]
    fn an_error_names_where_in_the_pattern() {
        let e = Pattern::compile(&json!({"detail": {"x": [{"contains": "a"}]}})).unwrap_err();
        assert_eq!(e.path, "detail.x[0]");
        assert!(e.message.contains("contains"), "{e}");
    }
}
