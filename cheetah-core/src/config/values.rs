//! The small value types config sections share: sizes like `"2GiB"`, and the error for a bad
//! value at a place in the text.

use serde::{Deserialize, Deserializer};

use crate::error::ConfigError;

/// Makes the error for a bad value at a span of the config text.
pub(super) type Invalid<'a> = &'a dyn Fn(std::ops::Range<usize>, String) -> ConfigError;

/// A size such as `"2GiB"`, `"512MB"` or a plain number of bytes.
pub(super) struct ByteSize(pub(super) u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Bytes(u64),
            Text(String),
        }
        match Either::deserialize(deserializer)? {
            Either::Bytes(n) => Ok(ByteSize(n)),
            Either::Text(s) => parse_byte_size(&s).map(ByteSize).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{s}` is not a size; write it like \"2GiB\", \"512MiB\" or \"500MB\""
                ))
            }),
        }
    }
}

fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return None,
    };
    (number >= 0.0).then_some((number * multiplier as f64) as u64)
}

/// A span of time such as `"400d"`, `"12h"` or `"2w"`, kept with the text it was written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// As written in the config.
    pub text: String,
    /// Its length.
    pub duration: chrono::TimeDelta,
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_span(&text).map(|duration| Span { text: text.clone(), duration }).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a span of time; write a positive number and a unit: s, m, h, d (days), w or y (365 days), such as \"400d\""
            ))
        })
    }
}

fn parse_span(text: &str) -> Option<chrono::TimeDelta> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok().filter(|&n| n > 0)?;
    let seconds: i64 = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => return None,
    };
    chrono::TimeDelta::try_seconds(number.checked_mul(seconds)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(parse_span("400d"), chrono::TimeDelta::try_days(400));
        assert_eq!(parse_span("12h"), chrono::TimeDelta::try_hours(12));
        assert_eq!(parse_span("2 w"), chrono::TimeDelta::try_weeks(2));
        for bad in ["0d", "-3d", "400", "d", "3 fortnights", "1.5d"] {
            assert_eq!(parse_span(bad), None, "{bad}");
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_byte_size("1.5 kb"), Some(1500));
        assert_eq!(parse_byte_size("12"), Some(12));
        assert_eq!(parse_byte_size("2 parsecs"), None);
    }
}
