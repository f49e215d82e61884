//! Exact quantities: prices in cents per MWh, volumes in 0.1 MW lots, energy in kWh, money in
//! cents. Never `f64`.
//!
//! On the wire every quantity is a decimal *string* with a fixed number of places (`"45.50"`,
//! `"12.5"`), which JSON carries without loss. Input takes either form the request schema
//! (`events-schema/api/PostOrdersRequest.json`) allows:
//! - a decimal string in the schema's plain form, `-?[0-9]+(\.[0-9]{1,places})?`: no sign `+`,
//!   no blanks, no exponent, no bare `.`;
//! - a JSON number, read from the literal the client wrote (see [`crate::json`]), exactly.
//!
//! A value that does not fit the unit's grid is an error, never rounded; so is a value outside
//! the `i64` range of the unit. Every value this module formats it also reads back.
//!
//! Arithmetic on these types is checked: a result that does not fit is an [`Overflow`], never a
//! wrapped or clamped number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Why a decimal could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("must be a decimal number, got {0}")]
    NotANumber(String),
    #[error("{0} is not a finite number in range")]
    OutOfRange(String),
    #[error("{value} has more than {places} decimal places")]
    OffGrid { value: String, places: u32 },
}

/// A computation on money or energy whose result does not fit its integer type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} overflows its integer range")]
pub struct Overflow(pub &'static str);

/// Longest text read as a decimal: far more digits than any `i64`, short enough to refuse a
/// megabyte of zeros without looking at it twice.
const MAX_DECIMAL_TEXT: usize = 400;

/// Parses a decimal string in the wire's plain form (`-12.34`, `0.5`) into an integer count of
/// `10^-places` units. More decimals than `places` is an error even when they are zeros: the
/// schema's pattern refuses them too.
pub fn parse_scaled(text: &str, places: u32) -> Result<i64, DecimalError> {
    match plain_decimal(text.as_bytes(), places) {
        Some(units) => Ok(units),
        None => parse_scaled_general(text, places),
    }
}

/// [`parse_scaled`] for any text: what the one-pass [`plain_decimal`] reads, and the messages
/// for what neither reads.
fn parse_scaled_general(text: &str, places: u32) -> Result<i64, DecimalError> {
    let not_a_number = || DecimalError::NotANumber(format!("{:?}", shorten(text)));
    if text.is_empty() || text.len() > MAX_DECIMAL_TEXT {
        return Err(not_a_number());
    }
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match rest.split_once('.') {
        Some((i, f)) if !f.is_empty() => (i, f),
        Some(_) => return Err(not_a_number()),
        None => (rest, ""),
    };
    if int_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(not_a_number());
    }
    if frac_part.len() > places as usize {
        return Err(DecimalError::OffGrid {
            value: shorten(text),
            places,
        });
    }
    scale_exact(text, negative, int_part, frac_part, 0, places)
}

/// Parses a JSON number literal (`-12.34`, `1e3`, `0.5E-1`: RFC 8259's grammar) exactly into an
/// integer count of `10^-places` units.
pub fn parse_number_literal(text: &str, places: u32) -> Result<i64, DecimalError> {
    let not_a_number = || DecimalError::NotANumber(shorten(text));
    if text.is_empty() {
        return Err(not_a_number());
    }
    if text.len() > MAX_DECIMAL_TEXT {
        return Err(DecimalError::NotANumber(format!(
            "{} ({} characters; at most {MAX_DECIMAL_TEXT})",
            shorten(text),
            text.len()
        )));
    }
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (
            &rest[..i],
            parse_exponent(&rest[i + 1..]).ok_or_else(not_a_number)?,
        ),
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if int_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
        || (mantissa.contains('.') && frac_part.is_empty())
    {
        return Err(not_a_number());
    }
    scale_exact(text, negative, int_part, frac_part, exponent, places)
}

/// An exponent's digits, saturated far beyond any scale that could matter.
fn parse_exponent(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits
        .trim_start_matches('0')
        .parse::<i64>()
        .unwrap_or(if digits.trim_start_matches('0').is_empty() {
            0
        } else {
            1_000_000
        })
        .min(1_000_000);
    Some(if negative { -magnitude } else { magnitude })
}

/// `int_part.frac_part × 10^exponent` in units of `10^-places`, exactly or not at all.
fn scale_exact(
    text: &str,
    negative: bool,
    int_part: &str,
    frac_part: &str,
    exponent: i64,
    places: u32,
) -> Result<i64, DecimalError> {
    let out_of_range = || DecimalError::OutOfRange(shorten(text));
    let off_grid = || DecimalError::OffGrid {
        value: shorten(text),
        places,
    };
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    // digits × 10^shift units
    let shift = exponent - frac_part.len() as i64 + i64::from(places);
    let (keep, zeros) = if shift >= 0 {
        (digits, shift as u64)
    } else {
        let cut = shift.unsigned_abs() as usize;
        if cut >= digits.len() {
            return Err(off_grid());
        }
        let (keep, dropped) = digits.split_at(digits.len() - cut);
        if dropped.bytes().any(|b| b != b'0') {
            return Err(off_grid());
        }
        (keep, 0)
    };
    // i64 has 19 digits at most.
    if keep.len() as u64 + zeros > 19 {
        return Err(out_of_range());
    }
    let magnitude: i128 = keep.parse().map_err(|_| out_of_range())?;
    let magnitude = magnitude
        .checked_mul(10i128.pow(zeros as u32))
        .ok_or_else(out_of_range)?;
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| out_of_range())
}

/// Reads a JSON value (string or number) as a scaled integer. A number is read through
/// serde_json's shortest representation of it; a request body's numbers are read from their
/// literals instead ([`crate::json::Document::literal`]).
pub fn scaled_from_json(value: &Value, places: u32) -> Result<i64, DecimalError> {
    match value {
        Value::String(s) => parse_scaled(s, places),
        Value::Number(n) => parse_number_literal(&n.to_string(), places),
        other => Err(DecimalError::NotANumber(short_json(other))),
    }
}

fn shorten(text: &str) -> String {
    if text.len() > 40 {
        format!("{}…", &text[..text.floor_char_boundary(40)])
    } else {
        text.to_string()
    }
}

/// A JSON value shortened for an error message.
pub fn short_json(value: &Value) -> String {
    shorten(&value.to_string())
}

/// Formats `units` (of `10^-places`) as a fixed-point decimal.
pub fn format_scaled(units: i64, places: u32) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = write_scaled(&mut text, units, places);
    text
}

/// Writes `units` (of `10^-places`) as a fixed-point decimal, without allocating: what
/// [`format_scaled`] answers, and what the quantities' `Display` and `Serialize` write.
pub fn write_scaled(out: &mut impl fmt::Write, units: i64, places: u32) -> fmt::Result {
    let scale = 10u64.pow(places);
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let whole = abs / scale;
    let frac = abs % scale;
    if places == 0 {
        write!(out, "{sign}{whole}")
    } else {
        write!(out, "{sign}{whole}.{frac:0width$}", width = places as usize)
    }
}

/// The plain decimals most values are (`"45.50"`, `"-3"`, `"7.5"`) read in one pass, when they
/// have few enough digits that their value fits; `None` sends anything else to the general path
/// of [`parse_scaled`], which answers the same for these and explains what is wrong with the
/// rest. (The general path builds a string of the digits for each value.)
pub fn plain_decimal(text: &[u8], places: u32) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let places = places as usize;
    // In one pass: the whole digits, then a point and at most `places` digits after it.
    let mut units: i64 = 0;
    let mut i = 0;
    while let Some(&b @ b'0'..=b'9') = digits.get(i) {
        // Below 10^18 whatever the digits.
        if i + places >= 18 {
            return None;
        }
        units = units * 10 + i64::from(b - b'0');
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut frac = 0;
    if i < digits.len() {
        if digits[i] != b'.' {
            return None;
        }
        i += 1;
        while let Some(&b @ b'0'..=b'9') = digits.get(i) {
            if frac == places {
                return None;
            }
            units = units * 10 + i64::from(b - b'0');
            frac += 1;
            i += 1;
        }
        if frac == 0 || i < digits.len() {
            return None; // "5." or "5.x"
        }
    }
    for _ in frac..places {
        units *= 10;
    }
    Some(if negative { -units } else { units })
}

/// Reads a quantity with `.0` decimal places straight from a deserializer, as
/// [`scaled_from_json`] reads it from a `serde_json::Value`, without building one: a string or
/// a number from the reader; anything else is refused with the same message.
#[derive(Debug, Clone, Copy)]
pub struct Scaled(pub u32);

impl Scaled {
    fn read_value<E: serde::de::Error>(self, value: &Value) -> Result<i64, E> {
        scaled_from_json(value, self.0).map_err(E::custom)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Scaled {
    type Value = i64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Scaled {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a decimal number")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
        parse_scaled(v, self.0).map_err(E::custom)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        self.read_value(&Value::from(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        self.read_value(&Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
        // Value::from(f64) is null for a non-finite number, as a Value read from JSON.
        self.read_value(&Value::from(v))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<i64, E> {
        self.read_value(&Value::Bool(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<i64, E> {
        self.read_value(&Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<i64, A::Error> {
        let value = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        self.read_value(&value)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<i64, A::Error> {
        let value = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        self.read_value(&value)
    }
}

macro_rules! fixed_point {
    ($(#[$doc:meta])* $name:ident, $places:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub i64);

        impl $name {
            /// Decimal places on the wire.
            pub const PLACES: u32 = $places;

            /// Reads a JSON string or number exactly.
            pub fn from_json(value: &Value) -> Result<Self, DecimalError> {
                scaled_from_json(value, Self::PLACES).map(Self)
            }

            /// Reads a JSON number literal exactly (`1e2`, `45.10`).
            pub fn from_literal(literal: &str) -> Result<Self, DecimalError> {
                parse_number_literal(literal, Self::PLACES).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_scaled(f, self.0, Self::PLACES)
            }
        }

        impl FromStr for $name {
            type Err = DecimalError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_scaled(s, Self::PLACES).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(Scaled(Self::PLACES)).map(Self)
            }
        }
    };
}

fixed_point!(
    /// A price in euro cents per MWh (`"45.50"` = 4550). The price tick is one cent.
    PriceCents,
    2
);
fixed_point!(
    /// A power volume in lots of 0.1 MW (`"12.5"` = 125). Volumes are MW held over one MTU.
    Lots,
    1
);
fixed_point!(
    /// Energy in kWh, written as MWh with three places (`"3.125"` = 3125 kWh).
    EnergyKwh,
    3
);
fixed_point!(
    /// Money in euro cents (`"1234.56"`).
    Cents,
    2
);

impl Lots {
    /// Energy of this power held for `minutes`: 0.1 MW × 15 min = 25 kWh. Exact for whole
    /// minutes that divide into an MTU; checked.
    pub fn energy_over(self, minutes: i64) -> Result<EnergyKwh, Overflow> {
        // 1 lot = 100 kW; kWh = 100 × minutes / 60
        let kwh = i128::from(self.0) * 100 * i128::from(minutes) / 60;
        i64::try_from(kwh)
            .map(EnergyKwh)
            .map_err(|_| Overflow("energy"))
    }

    /// The sum of `self` and `other`, checked.
    pub fn checked_add(self, other: Lots) -> Result<Lots, Overflow> {
        self.0
            .checked_add(other.0)
            .map(Lots)
            .ok_or(Overflow("volume"))
    }
}

impl EnergyKwh {
    /// The sum of `self` and `other`, checked.
    pub fn checked_add(self, other: EnergyKwh) -> Result<EnergyKwh, Overflow> {
        self.0
            .checked_add(other.0)
            .map(EnergyKwh)
            .ok_or(Overflow("energy"))
    }
}

/// Price × energy in cents × kWh / MWh units, to be summed and rounded once by
/// [`notional_to_cents`]. Two `i64` factors always fit an `i128`.
pub fn notional(price: PriceCents, energy: EnergyKwh) -> i128 {
    // cents/MWh × kWh = cents × kWh / MWh = (cents × kWh) / 1000
    i128::from(price.0) * i128::from(energy.0)
}

/// Rounds a sum of `notional` products (cents × kWh / MWh units) to cents, halves away from
/// zero; an amount beyond `i64` cents is an [`Overflow`], not a clamped figure.
pub fn notional_to_cents(sum: i128) -> Result<Cents, Overflow> {
    let q = sum / 1000;
    let r = sum % 1000;
    let rounded = if r.abs() * 2 >= 1000 {
        q + sum.signum()
    } else {
        q
    };
    i64::try_from(rounded)
        .map(Cents)
        .map_err(|_| Overflow("notional"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_decimal_text_may_be_400_characters_and_no_longer() {
        let longest = format!("{}1.5", "0".repeat(MAX_DECIMAL_TEXT - 3));
        assert_eq!(longest.len(), MAX_DECIMAL_TEXT);
        assert_eq!(parse_scaled(&longest, 1), Ok(15));
        let over = format!("0{longest}");
        assert!(matches!(
            parse_scaled(&over, 1),
            Err(DecimalError::NotANumber(_))
        ));
        assert!(matches!(
            parse_scaled("", 1),
            Err(DecimalError::NotANumber(_))
        ));
    }

    #[test]
    fn decimal_strings_and_numbers_are_read_exactly() {
        assert_eq!(parse_scaled("45.5", 2), Ok(4550));
        assert_eq!(parse_scaled("-500", 2), Ok(-50000));
        assert_eq!(parse_scaled("0.1", 1), Ok(1));
        assert!(matches!(
            parse_scaled("0.10", 1),
            Err(DecimalError::OffGrid { .. })
        ));
        assert_eq!(parse_number_literal("1e3", 2), Ok(100000));
        assert_eq!(parse_number_literal("12.50e-1", 2), Ok(125));
        assert_eq!(parse_number_literal("100.000", 2), Ok(10000));
        assert_eq!(PriceCents::from_json(&json!(45.1)), Ok(PriceCents(4510)));
        assert_eq!(Lots::from_json(&json!(7)), Ok(Lots(70)));
    }

    #[test]
    fn off_grid_and_huge_values_are_errors_not_rounding() {
        assert!(matches!(
            parse_scaled("45.123", 2),
            Err(DecimalError::OffGrid { .. })
        ));
        assert!(matches!(
            parse_scaled("0.05", 1),
            Err(DecimalError::OffGrid { .. })
        ));
        assert!(matches!(
            parse_number_literal("1e309", 2),
            Err(DecimalError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_number_literal("1e-400", 2),
            Err(DecimalError::OffGrid { .. })
        ));
        assert!(matches!(
            parse_number_literal("100.0000000000000001", 2),
            Err(DecimalError::OffGrid { .. })
        ));
        assert!(matches!(
            parse_scaled("99999999999999999999", 2),
            Err(DecimalError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_scaled("abc", 2),
            Err(DecimalError::NotANumber(_))
        ));
        assert!(matches!(
            parse_scaled("1.2.3", 2),
            Err(DecimalError::NotANumber(_))
        ));
        assert!(matches!(
            parse_scaled("", 2),
            Err(DecimalError::NotANumber(_))
        ));
        assert!(matches!(
            scaled_from_json(&json!(true), 2),
            Err(DecimalError::NotANumber(_))
        ));
    }

    #[test]
    fn the_plain_string_form_is_the_only_string_form() {
        for text in [
            " 100.00", "+100.00", "100.", ".5", "1e2", "NaN", "Infinity", "1_0", "0x10",
        ] {
            assert!(
                matches!(parse_scaled(text, 2), Err(DecimalError::NotANumber(_))),
                "{text:?}"
            );
        }
        assert!(matches!(
            parse_scaled("100.000", 2),
            Err(DecimalError::OffGrid { .. })
        ));
        assert_eq!(parse_scaled("-0.05", 2), Ok(-5));
        assert_eq!(parse_scaled("007.5", 1), Ok(75));
    }

    #[test]
    fn energy_of_a_huge_volume_is_an_overflow_not_a_wrap() {
        assert_eq!(Lots(i64::MAX).energy_over(15), Err(Overflow("energy")));
        assert_eq!(Lots(i64::MAX).checked_add(Lots(1)), Err(Overflow("volume")));
    }

    /// What `from_json` answers for a JSON text, as read through a `Value` (how the quantities
    /// were read before they had a reader of their own), without the error's position.
    fn via_value(text: &str) -> Option<Result<PriceCents, String>> {
        let value: Value = serde_json::from_str(text).ok()?;
        Some(PriceCents::from_json(&value).map_err(|e| e.to_string()))
    }

    fn direct(text: &str) -> Result<PriceCents, String> {
        serde_json::from_str::<PriceCents>(text).map_err(|e| {
            let e = e.to_string();
            e.split(" at line ").next().unwrap_or_default().to_string()
        })
    }

    proptest::proptest! {
        /// Reading a quantity straight from JSON answers what reading it through a `Value` did:
        /// the same units, or an error with the same message.
        #[test]
        fn read_straight_from_json_as_through_a_value(
            text in proptest::prop_oneof![
                r#""-?[0-9]{0,20}(\.[0-9]{0,4})?""#,
                r#""[-+0-9.eE ]{0,8}""#,
                r"-?[0-9]{1,22}(\.[0-9]{1,4})?([eE][-+]?[0-9]{1,3})?",
                proptest::strategy::Just("true".to_string()),
                proptest::strategy::Just("null".to_string()),
                proptest::strategy::Just("[\"1.5\"]".to_string()),
                proptest::strategy::Just(r#"{"a":"1.5"}"#.to_string()),
            ],
        ) {
            if let Some(expected) = via_value(&text) {
                proptest::prop_assert_eq!(direct(&text), expected, "{}", text);
            }
        }

        /// The one-pass reader of plain decimals answers what the general path answers.
        #[test]
        fn plain_decimals_read_as_the_general_path_reads_them(
            text in r"-?[0-9]{0,19}(\.[0-9]{0,4})?|[-+0-9.eE ]{0,8}",
            places in 1u32..=3,
        ) {
            if let Some(units) = plain_decimal(text.as_bytes(), places) {
                proptest::prop_assert_eq!(Ok(units), parse_scaled_general(&text, places));
            }
        }

        #[test]
        fn every_formatted_value_reads_back(units in proptest::prelude::any::<i64>(), places in 0u32..4) {
            proptest::prop_assert_eq!(parse_scaled(&format_scaled(units, places), places), Ok(units));
            proptest::prop_assert_eq!(
                parse_number_literal(&format_scaled(units, places), places),
                Ok(units)
            );
        }
    }

    #[test]
    fn plain_decimals_at_the_edge_of_the_fast_path() {
        for text in [
            "0",
            "-0.00",
            "007.5",
            "9999999999999999.99",
            "-9999999999999999.99",
            "1.5",
        ] {
            assert_eq!(
                plain_decimal(text.as_bytes(), 2).map(Ok),
                Some(parse_scaled_general(text, 2)),
                "{text}"
            );
        }
        for text in [
            "",
            "-",
            ".5",
            "5.",
            "1.234",
            "+1",
            "1e2",
            "99999999999999999.99",
            "1..2",
        ] {
            assert_eq!(plain_decimal(text.as_bytes(), 2), None, "{text}");
        }
    }

    #[test]
    fn formatting_keeps_fixed_places() {
        assert_eq!(PriceCents(4550).to_string(), "45.50");
        assert_eq!(PriceCents(-3501).to_string(), "-35.01");
        assert_eq!(PriceCents(-5).to_string(), "-0.05");
        assert_eq!(Lots(125).to_string(), "12.5");
        assert_eq!(Lots(125).energy_over(15), Ok(EnergyKwh(3125)));
        assert_eq!(EnergyKwh(3125).to_string(), "3.125");
    }

    #[test]
    fn notional_rounds_once_half_away_from_zero() {
        // 35.01 EUR/MWh × 0.025 MWh = 0.87525 EUR → 0.88
        assert_eq!(
            notional_to_cents(notional(PriceCents(3501), EnergyKwh(25))),
            Ok(Cents(88))
        );
        assert_eq!(
            notional_to_cents(notional(PriceCents(-3501), EnergyKwh(25))),
            Ok(Cents(-88))
        );
        assert_eq!(notional_to_cents(500), Ok(Cents(1)));
        assert_eq!(notional_to_cents(499), Ok(Cents(0)));
        assert_eq!(notional_to_cents(i128::MAX), Err(Overflow("notional")));
    }
}
