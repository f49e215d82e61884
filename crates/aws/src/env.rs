//! Configuration from the environment, read once at start-up into typed values. A missing or
//! malformed variable stops start-up with a message that names it.

use std::collections::HashMap;
use std::str::FromStr;

/// A variable that is missing or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

/// A snapshot of the environment (the process's, or a map in tests).
#[derive(Debug, Clone, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Self {
        Env(std::env::vars().collect())
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// A variable that must be set and not empty.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        match self.0.get(name).map(|v| v.trim()) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            Some(_) => Err(ConfigError {
                name,
                problem: "is set but empty".into(),
            }),
            None => Err(ConfigError {
                name,
                problem: "required environment variable is not set".into(),
            }),
        }
    }

    /// A variable that may be absent (empty counts as absent).
    pub fn optional(&self, name: &'static str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A variable parsed as `T`, or `default` when absent.
    pub fn parse_or<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| ConfigError {
                name,
                problem: format!("{v:?} does not parse: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_malformed_variables_are_named() {
        let env = Env::from_pairs([("MAX_ATTEMPTS", "twelve"), ("EMPTY", " ")]);
        assert_eq!(
            env.required("ORDERS_TABLE").unwrap_err().to_string(),
            "ORDERS_TABLE: required environment variable is not set"
        );
        assert_eq!(
            env.required("EMPTY").unwrap_err().to_string(),
            "EMPTY: is set but empty"
        );
        let err = env
            .parse_or::<u32>("MAX_ATTEMPTS", 14)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("MAX_ATTEMPTS: \"twelve\" does not parse"),
            "{err}"
        );
        assert_eq!(env.parse_or::<u32>("RETRY_BASE_SECONDS", 60), Ok(60));
    }
}
