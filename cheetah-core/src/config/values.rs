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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_byte_size("1.5 kb"), Some(1500));
        assert_eq!(parse_byte_size("12"), Some(12));
        assert_eq!(parse_byte_size("2 parsecs"), None);
    }
}
