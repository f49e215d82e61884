//! Prices and quantities read from a document as `PriceCents` and `Lots` read them from a
//! `serde_json::Value`, without building one: a string or a number straight from the reader.

use std::fmt;

use energy_core::money::{parse_scaled, scaled_from_json};
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A price or quantity with `.0` decimal places.
#[derive(Clone, Copy)]
pub(super) struct Decimal(pub u32);

impl Decimal {
    fn read_value<E: de::Error>(self, value: &Value) -> Result<i64, E> {
        scaled_from_json(value, self.0).map_err(E::custom)
    }
}

impl<'de> DeserializeSeed<'de> for Decimal {
    type Value = i64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Decimal {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a decimal number")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        match plain_decimal(v.as_bytes(), self.0) {
            Some(units) => Ok(units),
            None => parse_scaled(v, self.0).map_err(E::custom),
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        self.read_value(&Value::from(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        self.read_value(&Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        // Value::from(f64) is null for a non-finite number, as a Value read from JSON.
        self.read_value(&Value::from(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<i64, E> {
        self.read_value(&Value::Bool(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
        self.read_value(&Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<i64, A::Error> {
        let value = Value::deserialize(SeqAccessDeserializer::new(seq))?;
        self.read_value(&value)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<i64, A::Error> {
        let value = Value::deserialize(MapAccessDeserializer::new(map))?;
        self.read_value(&value)
    }
}

/// The plain decimals a document mostly holds (`"45.50"`, `"-3"`, `"7.5"`) read directly, when
/// they have few enough digits that their value fits; `None` sends anything else to
/// [`parse_scaled`], which answers the same for these and explains what is wrong with the rest.
/// (`parse_scaled` builds a string of the digits for each value: reading 1M steps took a third
/// longer through it.)
pub(super) fn plain_decimal(text: &[u8], places: u32) -> Option<i64> {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn plain_decimals_read_as_the_money_module_reads_them(
            text in r"-?[0-9]{0,19}(\.[0-9]{0,4})?|[-+0-9.eE ]{0,8}",
            places in 1u32..=3,
        ) {
            if let Some(units) = plain_decimal(text.as_bytes(), places) {
                prop_assert_eq!(Ok(units), parse_scaled(&text, places));
            }
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
                Some(parse_scaled(text, 2)),
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
}
