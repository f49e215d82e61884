//! Validation of a POST /orders body against the market rules.
//!
//! The body is read once into a JSON tree and walked by hand so that *every* problem is reported,
//! each with its JSON path and the rule it breaks, rather than the first one serde would stop at:
//! the seed's payload gets one line per missing field, a curve with three bad steps gets three.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::calendar::{AuctionId, MarketRules, MtuCheck};
use crate::market::{Market, Side, Zone, spellings};
use crate::money::{DecimalError, Lots, PriceCents};
use crate::order::{Order, Period, RecordId, Step, is_id_char};

/// At most this many problems are listed; the rest are counted.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// One problem: where, which rule, and a sentence that says both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path from the body's root, e.g. `$[2].periods[5].steps[1].price`.
    pub path: String,
    /// A stable code for the rule, e.g. `price_limit`.
    pub rule: &'static str,
    /// `<path>: <what is wrong>`, readable on its own.
    pub message: String,
}

impl FieldError {
    pub fn new(
        path: impl Into<String>,
        rule: &'static str,
        detail: impl std::fmt::Display,
    ) -> Self {
        let path = path.into();
        let message = format!("{path}: {detail}");
        FieldError {
            path,
            rule,
            message,
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// More orders than the documented maximum (HTTP 413).
    TooLarge { count: usize, max: usize },
    /// Everything wrong with the body (HTTP 400).
    Invalid(Vec<FieldError>),
}

/// A batch that passed every rule except perhaps the gate.
///
/// Orders for an auction whose gate has closed are listed in `late` rather than refused here:
/// a repost of an order that was stored before the gate is a duplicate, not an error, and only
/// the order store can tell (`submit-order` asks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub orders: Vec<Order>,
    /// `(index into orders, the gate_closed error)` for each order whose gate has closed.
    pub late: Vec<(usize, FieldError)>,
}

/// Parses and validates a request body strictly ([`crate::json`]: no duplicate keys, numbers
/// read from their literals). `now` decides gate closure.
pub fn parse_batch(body: &str, rules: &MarketRules, now: Timestamp) -> Result<Checked, BatchError> {
    // No array of a valid body is longer than this; the parse stops at a longer one instead of
    // building it (a 6 MiB body of `[1,1,1,…]` would be three million values).
    let max_items = MAX_ARRAY.max(rules.limits.max_batch + 1);
    let options = crate::json::Options {
        max_items,
        literal_keys: Some(&["price", "quantity"]),
    };
    let doc = crate::json::parse_with(body, options).map_err(|e| {
        if e.rule == "too_many_items" && e.path == "$" {
            BatchError::TooLarge {
                count: max_items + 1,
                max: rules.limits.max_batch,
            }
        } else {
            BatchError::Invalid(vec![e])
        }
    })?;
    validate_document(&doc, rules, now)
}

/// The longest array the parse of a request reads: past every real limit (100 orders, 100
/// quarter-hours on the longest day, 200 steps), so validation still names the rule an array
/// breaks when it is merely too long.
pub const MAX_ARRAY: usize = 1_000;

/// Validates a parsed body whose numbers carry no literals (they are read through serde_json's
/// shortest form); see the module docs.
pub fn validate_batch(
    value: &Value,
    rules: &MarketRules,
    now: Timestamp,
) -> Result<Checked, BatchError> {
    let doc = crate::json::Document::from_value(value.clone());
    validate_document(&doc, rules, now)
}

/// Validates a strictly parsed body; see the module docs.
pub fn validate_document(
    doc: &crate::json::Document,
    rules: &MarketRules,
    now: Timestamp,
) -> Result<Checked, BatchError> {
    let value = &doc.value;
    let Value::Array(items) = value else {
        return Err(BatchError::Invalid(vec![FieldError::new(
            "$",
            "type",
            format!(
                "must be a JSON array of orders, got {}; wrap a single order in [ ]",
                kind(value)
            ),
        )]));
    };
    if items.is_empty() {
        return Err(BatchError::Invalid(vec![FieldError::new(
            "$",
            "batch_empty",
            "the batch is empty",
        )]));
    }
    if items.len() > rules.limits.max_batch {
        return Err(BatchError::TooLarge {
            count: items.len(),
            max: rules.limits.max_batch,
        });
    }
    let mut errors = Errors::default();
    let mut orders = Vec::with_capacity(items.len());
    let mut late_orders = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("$[{i}]");
        if let Some(Value::String(id)) = item.get("record_id")
            && let Some(first) = seen.insert(id.clone(), i)
        {
            errors.push(FieldError::new(
                format!("{path}.record_id"),
                "duplicate_record_id",
                format!("{id:?} appears twice in the batch (also at $[{first}])"),
            ));
        }
        let mut reader = OrderReader {
            rules,
            now,
            doc,
            errors: &mut errors,
            late: None,
        };
        let order = reader.read(&path, item);
        let late = reader.late.take();
        if let Some(order) = order {
            if let Some(e) = late {
                late_orders.push((orders.len(), e));
            }
            orders.push(order);
        }
    }
    if errors.list.len() + errors.dropped == late_orders.len() {
        Ok(Checked {
            orders,
            late: late_orders,
        })
    } else {
        Err(BatchError::Invalid(errors.finish()))
    }
}

#[derive(Default)]
struct Errors {
    list: Vec<FieldError>,
    dropped: usize,
}

impl Errors {
    fn push(&mut self, e: FieldError) {
        if self.list.len() < MAX_REPORTED_ERRORS {
            self.list.push(e);
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Vec<FieldError> {
        if self.dropped > 0 {
            self.list.push(FieldError::new(
                "$",
                "too_many_errors",
                format!("{} more problems not listed", self.dropped),
            ));
        }
        self.list
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const ORDER_FIELDS: &[&str] = &[
    "record_id",
    "market",
    "delivery_date",
    "zone",
    "portfolio",
    "side",
    "periods",
];
const PERIOD_FIELDS: &[&str] = &["mtu_start", "steps"];
const STEP_FIELDS: &[&str] = &["price", "quantity"];

struct OrderReader<'a> {
    rules: &'a MarketRules,
    now: Timestamp,
    doc: &'a crate::json::Document,
    errors: &'a mut Errors,
    /// The gate error of the order being read, also in `errors`.
    late: Option<FieldError>,
}

impl OrderReader<'_> {
    fn object<'v>(
        &mut self,
        path: &str,
        value: &'v Value,
        fields: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = value else {
            self.errors.push(FieldError::new(
                path,
                "type",
                format!("must be an object, got {}", kind(value)),
            ));
            return None;
        };
        for key in map.keys().filter(|k| !fields.contains(&k.as_str())) {
            self.errors.push(FieldError::new(
                format!("{path}.{key}"),
                "unknown_field",
                format!("unknown field; expected one of {}", fields.join(", ")),
            ));
        }
        Some(map)
    }

    fn required<'v>(
        &mut self,
        path: &str,
        map: &'v Map<String, Value>,
        field: &str,
    ) -> Option<&'v Value> {
        let v = map.get(field);
        if v.is_none() {
            self.errors.push(FieldError::new(
                format!("{path}.{field}"),
                "required",
                "required field is missing",
            ));
        }
        v
    }

    /// A required, non-empty array of at most `max.0` items (rule `max.1` when over).
    fn array<'v>(
        &mut self,
        path: &str,
        map: &'v Map<String, Value>,
        field: &str,
        what: &str,
        empty_rule: &'static str,
        max: Option<(usize, &'static str)>,
    ) -> Option<&'v Vec<Value>> {
        let at = format!("{path}.{field}");
        let problem = match self.required(path, map, field)? {
            Value::Array(list) if list.is_empty() => FieldError::new(
                at,
                empty_rule,
                format!("must hold at least one of the {what}"),
            ),
            Value::Array(list) => match max {
                Some((max, rule)) if list.len() > max => {
                    FieldError::new(at, rule, format!("{} {what}; at most {max}", list.len()))
                }
                _ => return Some(list),
            },
            other => FieldError::new(
                at,
                "type",
                format!("must be an array of {what}, got {}", kind(other)),
            ),
        };
        self.errors.push(problem);
        None
    }

    fn string<'v>(
        &mut self,
        path: &str,
        map: &'v Map<String, Value>,
        field: &str,
    ) -> Option<&'v str> {
        match self.required(path, map, field)? {
            Value::String(s) => Some(s),
            other => {
                self.errors.push(FieldError::new(
                    format!("{path}.{field}"),
                    "type",
                    format!("must be a string, got {}", kind(other)),
                ));
                None
            }
        }
    }

    fn vocabulary<T: Copy + std::fmt::Display + std::str::FromStr>(
        &mut self,
        path: &str,
        map: &Map<String, Value>,
        field: &str,
        all: &[T],
    ) -> Option<T> {
        let s = self.string(path, map, field)?;
        let parsed = s.parse::<T>().ok();
        if parsed.is_none() {
            self.errors.push(FieldError::new(
                format!("{path}.{field}"),
                field_rule(field),
                format!("unknown {field} {s:?}; expected one of {}", spellings(all)),
            ));
        }
        parsed
    }

    fn read(&mut self, path: &str, item: &Value) -> Option<Order> {
        let map = self.object(path, item, ORDER_FIELDS)?;
        let record_id =
            self.string(path, map, "record_id")
                .and_then(|s| match RecordId::parse(s) {
                    Ok(id) => Some(id),
                    Err(why) => {
                        self.errors.push(FieldError::new(
                            format!("{path}.record_id"),
                            "record_id",
                            why,
                        ));
                        None
                    }
                });
        let market = self.vocabulary(path, map, "market", Market::ALL);
        let zone = self.vocabulary(path, map, "zone", Zone::ALL);
        let side = self.vocabulary(path, map, "side", Side::ALL);
        let delivery_date =
            self.string(path, map, "delivery_date")
                .and_then(|s| match s.parse::<Date>() {
                    Ok(d) if s.len() == 10 => Some(d),
                    _ => {
                        self.errors.push(FieldError::new(
                            format!("{path}.delivery_date"),
                            "date",
                            format!("{s:?} is not a date in YYYY-MM-DD form"),
                        ));
                        None
                    }
                });
        let portfolio = self.string(path, map, "portfolio").and_then(|s| {
            if s.is_empty() || s.len() > 64 || !s.chars().all(is_id_char) {
                self.errors.push(FieldError::new(
                    format!("{path}.portfolio"),
                    "portfolio",
                    format!("{s:?} must be 1 to 64 characters of A-Z a-z 0-9 _ . : -"),
                ));
                None
            } else {
                Some(s.to_string())
            }
        });
        let auction = match (market, delivery_date) {
            (Some(market), Some(delivery_date)) => Some(AuctionId {
                market,
                delivery_date,
            }),
            _ => None,
        };
        if let Some(auction) = auction {
            self.check_gate(path, auction);
        }
        let periods = self.periods(path, map, auction, side);
        Some(Order {
            record_id: record_id?,
            market: market?,
            delivery_date: delivery_date?,
            zone: zone?,
            portfolio: portfolio?,
            side: side?,
            periods: periods?,
        })
    }

    fn check_gate(&mut self, path: &str, auction: AuctionId) {
        match self.rules.book_opening(auction) {
            Ok(opens) if self.now < opens => {
                self.errors.push(FieldError::new(
                    format!("{path}.delivery_date"),
                    "book_not_open",
                    format!(
                        "the {} order book for {} opens at {opens} ({}); it takes no orders before",
                        auction.market,
                        auction.delivery_date,
                        crate::calendar::market_time(opens)
                    ),
                ));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                self.errors
                    .push(FieldError::new(format!("{path}.delivery_date"), "date", e));
                return;
            }
        }
        let window = self
            .rules
            .gate_closure(auction)
            .and_then(|gate| Ok((gate, self.rules.last_order_time(auction)?)));
        match window {
            Ok((gate, last)) if self.now >= last => {
                let e = FieldError::new(
                    format!("{path}.delivery_date"),
                    "gate_closed",
                    format!(
                        "the {} auction for {} closes at {gate}; orders are taken until {last}, {} s before, so each reaches the platform in time",
                        auction.market,
                        auction.delivery_date,
                        self.rules.limits.gate_margin.as_secs()
                    ),
                );
                self.late = Some(e.clone());
                self.errors.push(e);
            }
            Ok(_) => {}
            Err(e) => self
                .errors
                .push(FieldError::new(format!("{path}.delivery_date"), "date", e)),
        }
    }

    fn periods(
        &mut self,
        path: &str,
        map: &Map<String, Value>,
        auction: Option<AuctionId>,
        side: Option<Side>,
    ) -> Option<Vec<Period>> {
        let field = format!("{path}.periods");
        let list = self.array(path, map, "periods", "MTU curves", "periods_empty", None)?;
        let mut periods = Vec::with_capacity(list.len());
        let mut seen: BTreeMap<Timestamp, usize> = BTreeMap::new();
        let mut ok = true;
        for (j, item) in list.iter().enumerate() {
            let ppath = format!("{field}[{j}]");
            match self.period(&ppath, item, auction, side) {
                Some(period) => {
                    if let Some(first) = seen.insert(period.mtu_start, j) {
                        self.errors.push(FieldError::new(
                            format!("{ppath}.mtu_start"),
                            "duplicate_mtu",
                            format!(
                                "{} appears twice (also at periods[{first}])",
                                period.mtu_start
                            ),
                        ));
                        ok = false;
                    }
                    periods.push(period);
                }
                None => ok = false,
            }
        }
        periods.sort_by_key(|p| p.mtu_start);
        ok.then_some(periods)
    }

    fn period(
        &mut self,
        path: &str,
        item: &Value,
        auction: Option<AuctionId>,
        side: Option<Side>,
    ) -> Option<Period> {
        let map = self.object(path, item, PERIOD_FIELDS)?;
        let mtu_start = self
            .string(path, map, "mtu_start")
            .and_then(|s| self.mtu(&format!("{path}.mtu_start"), s, auction));
        let steps = self.steps(path, map, auction, side);
        Some(Period {
            mtu_start: mtu_start?,
            steps: steps?,
        })
    }

    fn mtu(&mut self, path: &str, s: &str, auction: Option<AuctionId>) -> Option<Timestamp> {
        let t = if is_utc_instant(s) {
            s.parse::<Timestamp>().ok()
        } else {
            None
        };
        let Some(t) = t else {
            self.errors.push(FieldError::new(
                path,
                "timestamp",
                format!(
                    "{s:?} is not a UTC instant in the form 2026-11-28T23:00:00Z (RFC 3339 with Z)"
                ),
            ));
            return None;
        };
        let auction = auction?;
        match self.rules.check_mtu(auction, t) {
            Ok(MtuCheck::Ok) => Some(t),
            Ok(MtuCheck::OffGrid) => {
                self.errors.push(FieldError::new(
                    path,
                    "mtu_grid",
                    format!("{t} is not on the 15-minute MTU grid"),
                ));
                None
            }
            Ok(MtuCheck::OutsideDelivery { start, end }) => {
                self.errors.push(FieldError::new(
                    path,
                    "mtu_outside_delivery",
                    format!("{t} is outside the {auction} delivery window [{start}, {end})"),
                ));
                None
            }
            Err(e) => {
                self.errors
                    .push(FieldError::new(path, "mtu_outside_delivery", e));
                None
            }
        }
    }

    fn steps(
        &mut self,
        path: &str,
        map: &Map<String, Value>,
        auction: Option<AuctionId>,
        side: Option<Side>,
    ) -> Option<Vec<Step>> {
        let field = format!("{path}.steps");
        let max = (self.rules.limits.max_steps_per_curve, "too_many_steps");
        let list = self.array(
            path,
            map,
            "steps",
            "price/quantity steps",
            "steps_empty",
            Some(max),
        )?;
        let mut steps = Vec::with_capacity(list.len());
        let mut ok = true;
        for (k, item) in list.iter().enumerate() {
            let spath = format!("{field}[{k}]");
            match self.step(&spath, item, auction) {
                Some(step) => {
                    if let (Some(prev), Some(side)) = (steps.last().copied(), side) {
                        self.check_monotonic(&spath, side, prev, step);
                    }
                    steps.push(step);
                }
                None => ok = false,
            }
        }
        // Each step is at most the maximum, so at most 200 of them cannot overflow.
        let total = steps
            .iter()
            .try_fold(Lots(0), |sum: Lots, s: &Step| sum.checked_add(s.quantity));
        let max = self.rules.limits.max_volume;
        match total {
            Ok(total) if ok && total > max => {
                self.errors.push(volume_limit(field, total, max));
                None
            }
            Err(_) => {
                self.errors.push(volume_limit(field, Lots(i64::MAX), max));
                None
            }
            _ => ok.then_some(steps),
        }
    }

    fn check_monotonic(&mut self, path: &str, side: Side, prev: Step, step: Step) {
        let (fine, word) = match side {
            Side::Sell => (step.price > prev.price, "above"),
            Side::Buy => (step.price < prev.price, "below"),
        };
        if !fine {
            let curve = if side == Side::Sell {
                "sell prices strictly ascend"
            } else {
                "buy prices strictly descend"
            };
            self.errors.push(FieldError::new(
                format!("{path}.price"),
                "monotonic",
                format!(
                    "{} must be {word} the previous step's {} ({curve})",
                    step.price, prev.price
                ),
            ));
        }
    }

    fn step(&mut self, path: &str, item: &Value, auction: Option<AuctionId>) -> Option<Step> {
        let map = self.object(path, item, STEP_FIELDS)?;
        let price = self.required(path, map, "price").and_then(|v| {
            let p = format!("{path}.price");
            let read = match self.doc.literal(&p) {
                Some(literal) => PriceCents::from_literal(literal),
                None => PriceCents::from_json(v),
            };
            match read {
                Ok(price) => {
                    let spec = self.rules.spec(auction?.market);
                    let market = auction?.market;
                    if price > spec.max_price {
                        self.errors.push(FieldError::new(
                            p,
                            "price_limit",
                            format!("{price} is above the {market} limit {}", spec.max_price),
                        ));
                        None
                    } else if price < spec.min_price {
                        self.errors.push(FieldError::new(
                            p,
                            "price_limit",
                            format!("{price} is below the {market} limit {}", spec.min_price),
                        ));
                        None
                    } else {
                        Some(price)
                    }
                }
                Err(DecimalError::OutOfRange(v)) => {
                    self.errors.push(FieldError::new(
                        p,
                        "price_limit",
                        format!("{v} is beyond every market's price limits"),
                    ));
                    None
                }
                Err(e) => {
                    self.errors
                        .push(decimal_error(p, e, "price_tick", "0.01 EUR/MWh tick"));
                    None
                }
            }
        });
        let quantity = self.required(path, map, "quantity").and_then(|v| {
            let p = format!("{path}.quantity");
            let read = match self.doc.literal(&p) {
                Some(literal) => Lots::from_literal(literal),
                None => Lots::from_json(v),
            };
            let max = self.rules.limits.max_volume;
            match read {
                Ok(q) if q.0 <= 0 => {
                    self.errors.push(FieldError::new(
                        p,
                        "quantity_positive",
                        format!("{q} must be above zero (the side gives the sign)"),
                    ));
                    None
                }
                Ok(q) if q > max => {
                    self.errors.push(volume_limit(p, q, max));
                    None
                }
                Err(DecimalError::OutOfRange(v)) => {
                    self.errors.push(FieldError::new(
                        p,
                        "volume_limit",
                        format!("{v} MW is beyond the {max} MW an order may offer in one MTU"),
                    ));
                    None
                }
                Ok(q) => Some(q),
                Err(e) => {
                    self.errors
                        .push(decimal_error(p, e, "quantity_lot", "0.1 MW lot"));
                    None
                }
            }
        });
        Some(Step {
            price: price?,
            quantity: quantity?,
        })
    }
}

fn volume_limit(path: String, volume: Lots, max: Lots) -> FieldError {
    FieldError::new(
        path,
        "volume_limit",
        format!(
            "{volume} MW is above the {max} MW an order may offer in one MTU (the exchange's maximum per order)"
        ),
    )
}

/// `YYYY-MM-DDTHH:MM:SS(.fraction)?Z`, the schema's pattern for `mtu_start`: UTC only.
fn is_utc_instant(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return false;
    }
    let shape = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let fraction = &b[19..b.len() - 1];
    shape
        && (fraction.is_empty()
            || (fraction[0] == b'.'
                && (2..=10).contains(&fraction.len())
                && fraction[1..].iter().all(u8::is_ascii_digit)))
}

fn field_rule(field: &str) -> &'static str {
    match field {
        "market" => "market",
        "zone" => "zone",
        "side" => "side",
        _ => "vocabulary",
    }
}

fn decimal_error(path: String, e: DecimalError, grid_rule: &'static str, grid: &str) -> FieldError {
    match e {
        // "1.000" is on the tick; what it breaks is the string form's number of decimals.
        DecimalError::OffGrid { value, places }
            if value
                .trim_matches('"')
                .split_once('.')
                .is_some_and(|(_, f)| {
                    f.len() > places as usize && f.bytes().skip(places as usize).all(|b| b == b'0')
                }) =>
        {
            FieldError::new(
                path,
                grid_rule,
                format!(
                    "{value} has more than {places} decimals: a decimal string has at most {places} (the {grid}), so write it without the trailing zeros"
                ),
            )
        }
        DecimalError::OffGrid { value, .. } => FieldError::new(
            path,
            grid_rule,
            format!("{value} is not a multiple of the {grid}"),
        ),
        DecimalError::OutOfRange(v) => FieldError::new(
            path,
            "not_finite",
            format!("{v} is not a finite number in range"),
        ),
        DecimalError::NotANumber(v) => FieldError::new(
            path,
            "not_a_number",
            format!("must be a decimal number or decimal string, got {v}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-03-01T08:00:00Z".parse().unwrap()
    }

    fn order_on(day: &str, mtus: &[String], steps: Value) -> Value {
        json!([{
            "record_id": "v-1", "market": "SDAC", "delivery_date": day, "zone": "NL",
            "portfolio": "P", "side": "SELL",
            "periods": mtus.iter().map(|m| json!({"mtu_start": m, "steps": steps})).collect::<Vec<_>>()
        }])
    }

    fn all_mtus(day: &str) -> Vec<String> {
        let auction = AuctionId {
            market: Market::Sdac,
            delivery_date: day.parse().unwrap(),
        };
        MarketRules::default()
            .mtus(auction)
            .unwrap()
            .iter()
            .map(|t| t.to_string())
            .collect()
    }

    fn rules_of(result: Result<Checked, BatchError>) -> Vec<&'static str> {
        match result {
            Err(BatchError::Invalid(errors)) => errors.iter().map(|e| e.rule).collect(),
            other => panic!("expected errors, got {other:?}"),
        }
    }

    #[test]
    fn a_curve_for_every_mtu_of_the_dst_days_is_valid() {
        let step = json!([{"price": "10.00", "quantity": "1.0"}]);
        for (day, n, posted) in [
            ("2026-03-29", 92, "2026-03-01T08:00:00Z"),
            ("2026-10-25", 100, "2026-10-20T08:00:00Z"),
        ] {
            let mtus = all_mtus(day);
            assert_eq!(mtus.len(), n);
            let orders = validate_batch(
                &order_on(day, &mtus, step.clone()),
                &MarketRules::default(),
                posted.parse().unwrap(),
            )
            .unwrap();
            assert_eq!(orders.orders[0].periods.len(), n);
        }
    }

    #[test]
    fn the_hour_the_spring_day_skips_is_outside_its_delivery_window() {
        // The day runs 2026-03-28T23:00Z (00:00 CET) to 2026-03-29T22:00Z (00:00 CEST): 23 hours.
        let step = json!([{"price": "10.00", "quantity": "1.0"}]);
        let late = vec!["2026-03-29T22:00:00Z".to_string()];
        let rules = rules_of(validate_batch(
            &order_on("2026-03-29", &late, step),
            &MarketRules::default(),
            now(),
        ));
        assert_eq!(rules, ["mtu_outside_delivery"]);
    }

    #[test]
    fn duplicate_mtus_and_too_many_steps_are_refused() {
        let mtu = all_mtus("2026-03-10")[0].clone();
        let steps: Vec<Value> = (0..201)
            .map(|i| json!({"price": format!("{i}.00"), "quantity": "1.0"}))
            .collect();
        let body = order_on("2026-03-10", &[mtu.clone(), mtu], json!(steps));
        let rules = rules_of(validate_batch(&body, &MarketRules::default(), now()));
        assert_eq!(rules, ["too_many_steps", "too_many_steps"]);
        let one = json!([{"price": "1.00", "quantity": "1.0"}]);
        let mtu = all_mtus("2026-03-10")[3].clone();
        let body = order_on("2026-03-10", &[mtu.clone(), mtu], one);
        assert_eq!(
            rules_of(validate_batch(&body, &MarketRules::default(), now())),
            ["duplicate_mtu"]
        );
    }

    #[test]
    fn unknown_market_zone_and_off_tick_price_are_named() {
        let mut body = order_on(
            "2026-03-10",
            &all_mtus("2026-03-10")[..1],
            json!([{"price": "10.001", "quantity": "1.0"}]),
        );
        body[0]["zone"] = json!("ATLANTIS");
        let errors = match validate_batch(&body, &MarketRules::default(), now()) {
            Err(BatchError::Invalid(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            errors[0].message,
            "$[0].zone: unknown zone \"ATLANTIS\"; expected one of DE-LU, FR, NL, BE, AT, PL, CZ, SK, HU, SI, HR, RO, BG, GR, IT-NORD, ES, PT, DK1, DK2, NO1, NO2, NO3, NO4, NO5, SE1, SE2, SE3, SE4, FI, EE, LV, LT"
        );
        assert_eq!(
            errors[1].message,
            "$[0].periods[0].steps[0].price: 10.001 is not a multiple of the 0.01 EUR/MWh tick"
        );
        // Found by a hostile run: "1.000" is on the tick, and was said not to be.
        body[0]["periods"][0]["steps"][0]["price"] = json!("1.000");
        let errors = match validate_batch(&body, &MarketRules::default(), now()) {
            Err(BatchError::Invalid(e)) => e,
            other => panic!("{other:?}"),
        };
        let price = errors.iter().find(|e| e.rule == "price_tick").unwrap();
        assert!(
            price.message.contains("more than 2 decimals")
                && !price.message.contains("not a multiple"),
            "{}",
            price.message
        );
        body[0]["zone"] = json!("NL");
        body[0]["market"] = json!("XBID");
        assert_eq!(
            rules_of(validate_batch(&body, &MarketRules::default(), now()))[0],
            "market"
        );
    }

    fn one_step(price: Value, quantity: Value) -> Value {
        order_on(
            "2026-03-10",
            &all_mtus("2026-03-10")[..1],
            json!([{"price": price, "quantity": quantity}]),
        )
    }

    fn rules_of_text(text: &str) -> Vec<(String, &'static str)> {
        match parse_batch(text, &MarketRules::default(), now()) {
            Err(BatchError::Invalid(errors)) => {
                errors.into_iter().map(|e| (e.path, e.rule)).collect()
            }
            other => panic!("expected errors for {text}, got {other:?}"),
        }
    }

    #[test]
    fn a_quantity_beyond_the_per_order_maximum_is_refused_not_stored() {
        // 10^17 MW once read back as 19 digits and became unreadable; 7 × 10^14 MW overflowed
        // the energy computation.
        for q in [
            "100000000000000000",
            "700000000000000",
            "3000.0",
            "99999999999999999999999",
        ] {
            let body = one_step(json!("10.00"), json!(q)).to_string();
            assert_eq!(
                rules_of_text(&body),
                [(
                    "$[0].periods[0].steps[0].quantity".to_string(),
                    "volume_limit"
                )],
                "{q}"
            );
        }
        // Two steps under the maximum that add up above it.
        let body = order_on(
            "2026-03-10",
            &all_mtus("2026-03-10")[..1],
            json!([{"price": "10.00", "quantity": "2000.0"}, {"price": "11.00", "quantity": "2000.0"}]),
        );
        assert_eq!(
            rules_of_text(&body.to_string()),
            [("$[0].periods[0].steps".to_string(), "volume_limit")]
        );
        let at_max = one_step(json!("10.00"), json!("2999.9")).to_string();
        assert!(parse_batch(&at_max, &MarketRules::default(), now()).is_ok());
    }

    #[test]
    fn numbers_are_read_exactly_as_written_and_never_rounded() {
        let cases = [
            (r#"1e-400"#, "price_tick"),
            (r#"100.0000000000000001"#, "price_tick"),
            (r#"" 100.00""#, "not_a_number"),
            (r#""+100.00""#, "not_a_number"),
            (r#""100.""#, "not_a_number"),
            (r#"".5""#, "not_a_number"),
            (r#""1e2""#, "not_a_number"),
            (r#""100.000""#, "price_tick"),
            (r#"1e309"#, "price_limit"),
        ];
        for (price, rule) in cases {
            let body = one_step(json!("PRICE"), json!("1.0"))
                .to_string()
                .replace(r#""PRICE""#, price);
            assert_eq!(
                rules_of_text(&body),
                [("$[0].periods[0].steps[0].price".to_string(), rule)],
                "{price}"
            );
        }
        // Numbers the schema takes are taken, exactly.
        for (price, cents) in [
            ("1e2", 10_000),
            ("45.1", 4510),
            ("100.000", 10_000),
            ("-0.5", -50),
        ] {
            let body = one_step(json!("PRICE"), json!("1.0"))
                .to_string()
                .replace(r#""PRICE""#, price);
            let checked = parse_batch(&body, &MarketRules::default(), now()).unwrap();
            assert_eq!(
                checked.orders[0].periods[0].steps[0].price,
                PriceCents(cents),
                "{price}"
            );
        }
    }

    #[test]
    fn a_duplicate_key_is_refused_not_last_wins() {
        let body = one_step(json!("10.00"), json!("1.0")).to_string().replacen(
            r#""side":"SELL""#,
            r#""side":"BUY","side":"SELL""#,
            1,
        );
        assert_eq!(
            rules_of_text(&body),
            [("$[0].side".to_string(), "duplicate_key")]
        );
    }

    #[test]
    fn an_mtu_with_an_offset_is_refused_like_the_schema_does() {
        // The first MTU of 2026-03-10, 2026-03-09T23:00:00Z, written in local time.
        assert_eq!(all_mtus("2026-03-10")[0], "2026-03-09T23:00:00Z");
        let offset = "2026-03-10T00:00:00+01:00".to_string();
        let body = order_on(
            "2026-03-10",
            &[offset],
            json!([{"price": "1.00", "quantity": "1.0"}]),
        );
        assert_eq!(
            rules_of_text(&body.to_string()),
            [("$[0].periods[0].mtu_start".to_string(), "timestamp")]
        );
    }

    #[test]
    fn an_order_before_its_book_opens_is_refused_with_the_opening_time() {
        for (day, market) in [
            ("2999-06-01", "SDAC"),
            ("2031-03-10", "SDAC"),
            ("2026-03-12", "IDA1"),
        ] {
            let mut body = one_step(json!("10.00"), json!("1.0"));
            body[0]["delivery_date"] = json!(day);
            body[0]["market"] = json!(market);
            let errors = match parse_batch(&body.to_string(), &MarketRules::default(), now()) {
                Err(BatchError::Invalid(e)) => e,
                other => panic!("{day} {market}: {other:?}"),
            };
            let book = errors.iter().find(|e| e.rule == "book_not_open");
            let book = book.unwrap_or_else(|| panic!("{day} {market}: {errors:?}"));
            assert_eq!(book.path, "$[0].delivery_date");
            assert!(book.message.contains("opens at"), "{}", book.message);
        }
        // Opens 45 days ahead: 2026-04-14 is open on 2026-03-01.
        let open = parse_batch(
            &one_step(json!("10.00"), json!("1.0"))
                .to_string()
                .replace("2026-03-10", "2026-04-14"),
            &MarketRules::default(),
            now(),
        );
        assert!(
            !matches!(&open, Err(BatchError::Invalid(e)) if e.iter().any(|e| e.rule == "book_not_open")),
            "{open:?}"
        );
    }

    #[test]
    fn new_orders_stop_a_safety_margin_before_the_gate() {
        let body = one_step(json!("10.00"), json!("1.0")).to_string();
        let rules = MarketRules::default();
        // The SDAC gate for 2026-03-10 is 2026-03-09T11:00:00Z; the margin is 60 s.
        let rules_at = |t: &str| parse_batch(&body, &rules, t.parse().unwrap()).unwrap().late;
        assert!(rules_at("2026-03-09T10:58:59Z").is_empty());
        let late = rules_at("2026-03-09T10:59:00Z");
        assert_eq!(late.len(), 1);
        assert!(
            late[0].1.message.contains("60 s before"),
            "{}",
            late[0].1.message
        );
    }

    #[test]
    fn an_order_after_its_gate_is_late_not_invalid() {
        let body = one_step(json!("10.00"), json!("1.0")).to_string();
        let after_gate: Timestamp = "2026-03-09T11:00:00Z".parse().unwrap();
        let checked = parse_batch(&body, &MarketRules::default(), after_gate).unwrap();
        assert_eq!(checked.late.len(), 1);
        assert_eq!(checked.late[0].1.rule, "gate_closed");
        // With another problem, the gate is reported alongside it.
        let bad = body.replace(r#""zone":"NL""#, r#""zone":"XX""#);
        assert_eq!(
            parse_batch(&bad, &MarketRules::default(), after_gate)
                .map_err(|e| match e {
                    BatchError::Invalid(v) => v.into_iter().map(|e| e.rule).collect::<Vec<_>>(),
                    other => panic!("{other:?}"),
                })
                .unwrap_err(),
            ["zone", "gate_closed"]
        );
    }
}
