//! What is wrong with a configuration, and where: the one error type of the daemon's TOML,
//! for the main sections (`config`) and the `[bgp]` section (`bgp_config`) alike.

use std::fmt;

/// What is wrong with a configuration, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field's path, as written in the file (`pods[1].egress_ip`), or `toml` for syntax.
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// The error for `field`.
pub(crate) fn bad(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        problem: problem.into(),
    }
}
