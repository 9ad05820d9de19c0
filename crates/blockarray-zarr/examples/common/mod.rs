//! Command-line options shared by the examples: `--name value`.

#![allow(dead_code)] // each example uses the helpers it needs

use std::str::FromStr;

/// The value after `--name` on the command line, if present.
pub fn value(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The value after `--name` parsed as `T`, or `default` when absent or unparsable.
pub fn arg<T: FromStr>(name: &str, default: T) -> T {
    value(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}
