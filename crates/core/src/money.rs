//! Exact quantities: prices in cents per MWh, volumes in 0.1 MW lots, energy in kWh, money in
//! cents. Never `f64`.
//!
//! On the wire every quantity is a decimal *string* with a fixed number of places (`"45.50"`,
//! `"12.5"`), which JSON carries without loss. Input is more lenient: a decimal string or a JSON
//! number is accepted; a number is read through its shortest round-trip representation, which
//! is the literal the client wrote for anything with 15 significant digits or fewer (every valid
//! price and volume). A value that does not fit the unit's grid is an error, never rounded.

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

/// Parses `text` (`-12.34`, `1e3`, `0.5E-1`) into an integer count of `10^-places` units.
/// Exact: fails rather than round.
pub fn parse_scaled(text: &str, places: u32) -> Result<i64, DecimalError> {
    let not_a_number = || DecimalError::NotANumber(format!("{text:?}"));
    let s = text.trim();
    if s.is_empty() || s.len() > 64 {
        return Err(not_a_number());
    }
    let (negative, rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => {
            let exp: i32 = rest[i + 1..].parse().map_err(|_| not_a_number())?;
            (&rest[..i], exp)
        }
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(not_a_number());
    }
    // digits * 10^(exponent - frac_len) expressed in units of 10^-places
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let shift = i64::from(exponent) - frac_part.len() as i64 + i64::from(places);
    let out_of_range = || DecimalError::OutOfRange(text.to_string());
    if digits.is_empty() {
        return Ok(0);
    }
    let value: i64 = if shift >= 0 {
        if shift > 18 || digits.len() > 18 {
            return Err(out_of_range());
        }
        let base: i64 = digits.parse().map_err(|_| out_of_range())?;
        base.checked_mul(10i64.pow(shift as u32))
            .ok_or_else(out_of_range)?
    } else {
        let cut = (-shift) as usize;
        if cut >= digits.len() {
            return Err(DecimalError::OffGrid {
                value: text.to_string(),
                places,
            });
        }
        let (keep, dropped) = digits.split_at(digits.len() - cut);
        if dropped.bytes().any(|b| b != b'0') {
            return Err(DecimalError::OffGrid {
                value: text.to_string(),
                places,
            });
        }
        if keep.len() > 18 {
            return Err(out_of_range());
        }
        keep.parse().map_err(|_| out_of_range())?
    };
    Ok(if negative { -value } else { value })
}

/// Reads a JSON value (string or number) as a scaled integer.
pub fn scaled_from_json(value: &Value, places: u32) -> Result<i64, DecimalError> {
    match value {
        Value::String(s) => parse_scaled(s, places),
        Value::Number(n) => {
            if let Some(f) = n.as_f64()
                && !f.is_finite()
            {
                return Err(DecimalError::OutOfRange(n.to_string()));
            }
            parse_scaled(&n.to_string(), places)
        }
        other => Err(DecimalError::NotANumber(short_json(other))),
    }
}

/// A JSON value shortened for an error message.
pub fn short_json(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 40 {
        format!("{}…", &text[..text.floor_char_boundary(40)])
    } else {
        text
    }
}

/// Formats `units` (of `10^-places`) as a fixed-point decimal.
pub fn format_scaled(units: i64, places: u32) -> String {
    let scale = 10i64.pow(places);
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let whole = abs / scale as u64;
    let frac = abs % scale as u64;
    if places == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{frac:0width$}", width = places as usize)
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
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&format_scaled(self.0, Self::PLACES))
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
                let value = Value::deserialize(deserializer)?;
                Self::from_json(&value).map_err(serde::de::Error::custom)
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
    /// Energy of this power held for `minutes`: 0.1 MW × 15 min = 25 kWh.
    pub fn energy_over(self, minutes: i64) -> EnergyKwh {
        // 1 lot = 100 kW; kWh = 100 × minutes / 60
        EnergyKwh(self.0 * 100 * minutes / 60)
    }
}

/// Price × energy, rounded once to a cent, halves away from zero.
pub fn notional(price: PriceCents, energy: EnergyKwh) -> i128 {
    // cents/MWh × kWh = cents × kWh / MWh = (cents × kWh) / 1000
    i128::from(price.0) * i128::from(energy.0)
}

/// Rounds a sum of `notional` products (cents × kWh / MWh units) to cents.
pub fn notional_to_cents(sum: i128) -> Cents {
    let q = sum / 1000;
    let r = sum % 1000;
    let rounded = if r.abs() * 2 >= 1000 {
        q + sum.signum()
    } else {
        q
    };
    Cents(rounded.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimal_strings_and_numbers_are_read_exactly() {
        assert_eq!(parse_scaled("45.5", 2), Ok(4550));
        assert_eq!(parse_scaled("-500", 2), Ok(-50000));
        assert_eq!(parse_scaled("0.10", 1), Ok(1));
        assert_eq!(parse_scaled("1e3", 2), Ok(100000));
        assert_eq!(parse_scaled("12.50e-1", 2), Ok(125));
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
            parse_scaled("1e309", 2),
            Err(DecimalError::OutOfRange(_))
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
    fn formatting_keeps_fixed_places() {
        assert_eq!(PriceCents(4550).to_string(), "45.50");
        assert_eq!(PriceCents(-3501).to_string(), "-35.01");
        assert_eq!(PriceCents(-5).to_string(), "-0.05");
        assert_eq!(Lots(125).to_string(), "12.5");
        assert_eq!(Lots(125).energy_over(15), EnergyKwh(3125));
        assert_eq!(EnergyKwh(3125).to_string(), "3.125");
    }

    #[test]
    fn notional_rounds_once_half_away_from_zero() {
        // 35.01 EUR/MWh × 0.025 MWh = 0.87525 EUR → 0.88
        assert_eq!(
            notional_to_cents(notional(PriceCents(3501), EnergyKwh(25))),
            Cents(88)
        );
        assert_eq!(
            notional_to_cents(notional(PriceCents(-3501), EnergyKwh(25))),
            Cents(-88)
        );
        assert_eq!(notional_to_cents(500), Cents(1));
        assert_eq!(notional_to_cents(499), Cents(0));
    }
}
