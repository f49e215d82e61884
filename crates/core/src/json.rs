//! Strict JSON for request bodies.
//!
//! RFC 8259, read into a [`serde_json::Value`], plus the two things `Value` forgets:
//! - **a key twice in one object is an error** (`{"side": "BUY", "side": "SELL"}` has no single
//!   meaning; serde_json would keep the last), reported at the key's path;
//! - **every number keeps the literal the client wrote**, so that a price of `1e-400` or
//!   `100.0000000000000001` is read exactly (and refused as off the tick) instead of through the
//!   nearest `f64`. [`Document::literal`] gives it by path.
//!
//! Paths are written as the validator writes them: `$`, `$[0]`, `$[0].periods[2].steps[0].price`.
//! Nesting deeper than [`MAX_DEPTH`] is refused, so a hostile body cannot exhaust the stack.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use crate::validate::FieldError;

/// Deepest nesting of arrays and objects read (serde_json's own limit).
pub const MAX_DEPTH: usize = 128;

/// A parsed body: the tree and each number's literal.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub value: Value,
    literals: HashMap<String, String>,
}

impl Document {
    /// A tree read by other means: its numbers are read through serde_json's shortest form.
    pub fn from_value(value: Value) -> Document {
        Document {
            value,
            literals: HashMap::new(),
        }
    }

    /// The literal of the number at `path`, as the client wrote it.
    pub fn literal(&self, path: &str) -> Option<&str> {
        self.literals.get(path).map(String::as_str)
    }
}

/// Bounds on what a parse keeps, so a hostile body costs little more than its own size.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Most items read from any one array; past it the parse stops with `too_many_items`.
    pub max_items: usize,
    /// Keep the literals of the numbers under these keys only (all when `None`).
    pub literal_keys: Option<&'static [&'static str]>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_items: usize::MAX,
            literal_keys: None,
        }
    }
}

/// Parses `text` strictly; the error names the path where reading stopped.
pub fn parse(text: &str) -> Result<Document, FieldError> {
    parse_with(text, Options::default())
}

/// [`parse`] within `options`.
pub fn parse_with(text: &str, options: Options) -> Result<Document, FieldError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        at: 0,
        literals: HashMap::new(),
        options,
    };
    parser.skip_blank();
    if parser.at == parser.bytes.len() {
        return Err(FieldError::new(
            "$",
            "json",
            "the body is empty; send a JSON array of orders",
        ));
    }
    let value = parser.value("$".to_string(), 0)?;
    parser.skip_blank();
    if parser.at != parser.bytes.len() {
        return Err(parser.syntax("$", "trailing characters after the JSON value"));
    }
    Ok(Document {
        value,
        literals: parser.literals,
    })
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    literals: HashMap<String, String>,
    options: Options,
}

impl Parser<'_> {
    fn syntax(&self, path: &str, what: &str) -> FieldError {
        let (line, column) = self.position();
        FieldError::new(
            path,
            "json",
            format!("not valid JSON: {what} at line {line} column {column}"),
        )
    }

    fn position(&self) -> (usize, usize) {
        let before = &self.text[..self.text.floor_char_boundary(self.at)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn skip_blank(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn value(&mut self, path: String, depth: usize) -> Result<Value, FieldError> {
        match self.peek() {
            Some(b'{') => self.object(path, depth + 1),
            Some(b'[') => self.array(path, depth + 1),
            Some(b'"') => self.string(&path).map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(path),
            Some(b't') => self.word("true", Value::Bool(true), &path),
            Some(b'f') => self.word("false", Value::Bool(false), &path),
            Some(b'n') => self.word("null", Value::Null, &path),
            Some(_) => Err(self.syntax(&path, "expected a value")),
            None => Err(self.syntax(&path, "the body ends where a value should be")),
        }
    }

    fn word(&mut self, word: &str, value: Value, path: &str) -> Result<Value, FieldError> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.syntax(path, "expected a value"))
        }
    }

    fn deeper(&self, path: &str, depth: usize) -> Result<(), FieldError> {
        if depth > MAX_DEPTH {
            return Err(self.syntax(
                path,
                &format!("nested deeper than {MAX_DEPTH} arrays and objects"),
            ));
        }
        Ok(())
    }

    fn object(&mut self, path: String, depth: usize) -> Result<Value, FieldError> {
        self.deeper(&path, depth)?;
        self.at += 1; // {
        let mut map = Map::new();
        self.skip_blank();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_blank();
            if self.peek() != Some(b'"') {
                return Err(self.syntax(&path, "expected a key in double quotes"));
            }
            let key = self.string(&path)?;
            let at = format!("{path}.{key}");
            if map.contains_key(&key) {
                return Err(FieldError::new(
                    at,
                    "duplicate_key",
                    format!("the key {key:?} appears twice in one object; send it once"),
                ));
            }
            self.skip_blank();
            if self.peek() != Some(b':') {
                return Err(self.syntax(&at, "expected ':' after the key"));
            }
            self.at += 1;
            self.skip_blank();
            let value = self.value(at, depth)?;
            map.insert(key, value);
            self.skip_blank();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(self.syntax(&path, "expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, path: String, depth: usize) -> Result<Value, FieldError> {
        self.deeper(&path, depth)?;
        self.at += 1; // [
        let mut items = Vec::new();
        self.skip_blank();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_blank();
            if items.len() == self.options.max_items {
                return Err(FieldError::new(
                    path,
                    "too_many_items",
                    format!("more than {} items", self.options.max_items),
                ));
            }
            let item = self.value(format!("{path}[{}]", items.len()), depth)?;
            items.push(item);
            self.skip_blank();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.syntax(&path, "expected ',' or ']'")),
            }
        }
    }

    fn string(&mut self, path: &str) -> Result<String, FieldError> {
        self.at += 1; // "
        let mut out = String::new();
        loop {
            let start = self.at;
            while let Some(&b) = self.bytes.get(self.at) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            // Stops only at ASCII bytes, so both ends are character boundaries.
            out.push_str(&self.text[start..self.at]);
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let c = self.escape(path)?;
                    out.push(c);
                }
                Some(_) => {
                    return Err(self.syntax(
                        path,
                        "a control character in a string (escape it, e.g. \\n or \\u0000)",
                    ));
                }
                None => return Err(self.syntax(path, "the body ends inside a string")),
            }
        }
    }

    fn escape(&mut self, path: &str) -> Result<char, FieldError> {
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.at += 1;
                let first = self.hex4(path)?;
                return match first {
                    0xD800..=0xDBFF => {
                        if !self.bytes[self.at..].starts_with(b"\\u") {
                            return Err(self.syntax(path, "a lone surrogate in a \\u escape"));
                        }
                        self.at += 2;
                        let second = self.hex4(path)?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.syntax(path, "a lone surrogate in a \\u escape"));
                        }
                        let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                        char::from_u32(code)
                            .ok_or_else(|| self.syntax(path, "an invalid \\u escape"))
                    }
                    0xDC00..=0xDFFF => Err(self.syntax(path, "a lone surrogate in a \\u escape")),
                    code => char::from_u32(code)
                        .ok_or_else(|| self.syntax(path, "an invalid \\u escape")),
                };
            }
            _ => return Err(self.syntax(path, "an invalid escape in a string")),
        };
        self.at += 1;
        Ok(c)
    }

    fn hex4(&mut self, path: &str) -> Result<u32, FieldError> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .filter(|d| d.iter().all(u8::is_ascii_hexdigit))
            .ok_or_else(|| self.syntax(path, "an invalid \\u escape"))?;
        let code = digits.iter().fold(0u32, |acc, d| {
            acc * 16 + (*d as char).to_digit(16).unwrap_or(0)
        });
        self.at += 4;
        Ok(code)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self, path: String) -> Result<Value, FieldError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let int_start = self.at;
        let int_digits = self.digits();
        if int_digits == 0 || (int_digits > 1 && self.bytes[int_start] == b'0') {
            return Err(self.syntax(&path, "an invalid number"));
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            integer = false;
            if self.digits() == 0 {
                return Err(self.syntax(&path, "an invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.syntax(&path, "an invalid number"));
            }
        }
        let literal = &self.text[start..self.at];
        // The tree holds the nearest number serde_json can; readers of exact quantities use
        // the literal. A literal beyond f64 stands as the largest finite one of its sign.
        let number = if integer {
            literal
                .parse::<i64>()
                .map(Number::from)
                .or_else(|_| literal.parse::<u64>().map(Number::from))
                .ok()
        } else {
            None
        };
        let number = number.unwrap_or_else(|| {
            let f: f64 = literal.parse().unwrap_or(0.0);
            let f = if f.is_finite() {
                f
            } else {
                f64::MAX.copysign(f)
            };
            Number::from_f64(f).unwrap_or_else(|| Number::from(0))
        });
        let keep = match self.options.literal_keys {
            None => true,
            Some(keys) => keys
                .iter()
                .any(|k| path.rsplit_once('.').is_some_and(|(_, last)| last == *k)),
        };
        if keep {
            self.literals.insert(path, literal.to_string());
        }
        Ok(Value::Number(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(text: &str) -> (String, &'static str) {
        let e = parse(text).expect_err(text);
        (e.path, e.rule)
    }

    #[test]
    fn a_duplicate_key_is_an_error_at_its_path() {
        assert_eq!(
            rule(r#"[{"side": "BUY", "side": "SELL"}]"#),
            ("$[0].side".to_string(), "duplicate_key")
        );
        // The same key in two objects is fine.
        assert!(parse(r#"[{"a": 1}, {"a": 2}]"#).is_ok());
    }

    #[test]
    fn numbers_keep_their_literals() {
        let doc = parse(r#"[{"p": 1e-400, "q": 100.0000000000000001, "r": -0}]"#).unwrap();
        assert_eq!(doc.literal("$[0].p"), Some("1e-400"));
        assert_eq!(doc.literal("$[0].q"), Some("100.0000000000000001"));
        assert_eq!(doc.literal("$[0].r"), Some("-0"));
        assert_eq!(doc.value[0]["r"], json!(0));
        let big = parse("[1e999, -1e999]").unwrap();
        assert!(big.value[0].is_number() && big.value[1].as_f64() < Some(0.0));
    }

    #[test]
    fn what_rfc_8259_refuses_is_refused() {
        for text in [
            "",
            " ",
            "[1,]",
            "[01]",
            "[1.]",
            "[.5]",
            "[+1]",
            "[NaN]",
            "[Infinity]",
            "[-]",
            "[1e]",
            "{\"a\" 1}",
            "{'a': 1}",
            "[\"\u{1}\"]",
            "[\"\\x\"]",
            "[\"\\ud800\"]",
            "[\"\\udc00\"]",
            "[1] [2]",
            "[tru]",
            "{\"a\":1,}",
            "\"unterminated",
        ] {
            assert_eq!(rule(text).1, "json", "{text:?}");
        }
    }

    #[test]
    fn a_huge_array_stops_the_parse_at_the_limit() {
        let huge = format!("[{}1]", "1,".repeat(1_000_000));
        let options = Options {
            max_items: 101,
            literal_keys: Some(&["price"]),
        };
        let e = parse_with(&huge, options).unwrap_err();
        assert_eq!((e.path.as_str(), e.rule), ("$", "too_many_items"));
        // Only the literals asked for are kept.
        let doc = parse_with(r#"[{"price": 1.5, "other": 2}]"#, options).unwrap();
        assert_eq!(doc.literal("$[0].price"), Some("1.5"));
        assert_eq!(doc.literal("$[0].other"), None);
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        let deep = "[".repeat(100_000);
        assert_eq!(rule(&deep).1, "json");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let over = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(rule(&over).1, "json");
    }

    proptest::proptest! {
        /// On anything serde_json reads without a duplicate key, both agree on the tree.
        #[test]
        fn agrees_with_serde_json(value in arb_json()) {
            let text = value.to_string();
            let doc = parse(&text).unwrap();
            proptest::prop_assert_eq!(doc.value, serde_json::from_str::<Value>(&text).unwrap());
        }

        /// Whatever the input, it answers: a tree or an error, never a panic.
        #[test]
        fn never_panics(text in "[\\[\\]{}\",:0-9eE.+\\-a-z\\\\ ]{0,40}") {
            let ours = parse(&text).is_ok();
            let theirs = serde_json::from_str::<Value>(&text).is_ok();
            // serde_json takes duplicate keys, which we refuse; otherwise the same verdict.
            if ours { proptest::prop_assert!(theirs, "{text:?}"); }
        }
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            (-1e300f64..1e300).prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
