//! Markets, bidding zones and sides: the closed vocabularies of an order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(()) }
            }
        }
    };
}

vocabulary!(
    /// The auctions Energy bids in.
    Market {
        Sdac => "SDAC",
        Ida1 => "IDA1",
        Ida2 => "IDA2",
        Ida3 => "IDA3",
    }
);

vocabulary!(
    /// SDAC bidding zones (a fixed list; an unknown zone is a validation error naming it).
    Zone {
        DeLu => "DE-LU",
        Fr => "FR",
        Nl => "NL",
        Be => "BE",
        At => "AT",
        Pl => "PL",
        Cz => "CZ",
        Sk => "SK",
        Hu => "HU",
        Si => "SI",
        Hr => "HR",
        Ro => "RO",
        Bg => "BG",
        Gr => "GR",
        It => "IT-NORD",
        Es => "ES",
        Pt => "PT",
        Dk1 => "DK1",
        Dk2 => "DK2",
        No1 => "NO1",
        No2 => "NO2",
        No3 => "NO3",
        No4 => "NO4",
        No5 => "NO5",
        Se1 => "SE1",
        Se2 => "SE2",
        Se3 => "SE3",
        Se4 => "SE4",
        Fi => "FI",
        Ee => "EE",
        Lv => "LV",
        Lt => "LT",
    }
);

vocabulary!(
    /// Buy or sell; quantities are always positive and the side gives the sign.
    Side {
        Buy => "BUY",
        Sell => "SELL",
    }
);

/// Lists the spellings of a vocabulary for an error message.
pub fn spellings<T: Copy + fmt::Display>(all: &[T]) -> String {
    all.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
