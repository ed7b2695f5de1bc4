//! Byte layout of RocksDB keys.
//!
//! Chunk keys are `id (u32 BE) ++ day (u32 BE, sign bit flipped)`, so one table's or one
//! field's chunks are contiguous and in chronological order, negative days included.

use crate::types::Day;

/// Length of a chunk key.
pub const CHUNK_KEY_LEN: usize = 8;

/// The key of the chunk of table or field `id` on `day`.
pub fn chunk_key(id: u32, day: Day) -> [u8; CHUNK_KEY_LEN] {
    let mut key = [0; CHUNK_KEY_LEN];
    key[..4].copy_from_slice(&id.to_be_bytes());
    key[4..].copy_from_slice(&day_bytes(day));
    key
}

/// The first key at or after every chunk of `id`.
pub fn id_prefix(id: u32) -> [u8; 4] {
    id.to_be_bytes()
}

/// Splits a chunk key into its id and day.
pub fn parse_chunk_key(key: &[u8]) -> Option<(u32, Day)> {
    let key: &[u8; CHUNK_KEY_LEN] = key.try_into().ok()?;
    let id = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    let day = (u32::from_be_bytes([key[4], key[5], key[6], key[7]]) ^ SIGN) as Day;
    Some((id, day))
}

const SIGN: u32 = 0x8000_0000;

/// A day as order-preserving bytes.
pub fn day_bytes(day: Day) -> [u8; 4] {
    ((day as u32) ^ SIGN).to_be_bytes()
}

/// The inverse of [`day_bytes`].
pub fn parse_day(bytes: &[u8]) -> Option<Day> {
    let bytes: [u8; 4] = bytes.try_into().ok()?;
    Some((u32::from_be_bytes(bytes) ^ SIGN) as Day)
}

/// Meta keys: a fixed prefix followed by a big-endian id.
pub mod meta {
    /// The store's format version.
    pub const FORMAT_VERSION: &[u8] = b"format_version";
    /// The catalog of tables and fields.
    pub const CATALOG: &[u8] = b"catalog";
    /// Prefix of per-table watermarks.
    pub const WATERMARK: &[u8] = b"watermark/";
    /// Prefix of per-table last-update times.
    pub const UPDATED: &[u8] = b"updated/";
    /// Prefix of per-field backfill progress.
    pub const FIELDMARK: &[u8] = b"fieldmark/";
    /// Prefix of symbol dictionary entries.
    pub const SYMBOL: &[u8] = b"symbol/";
    /// Prefix of the day index: `day/ ++ table id ++ day` → rows that day.
    pub const DAY: &[u8] = b"day/";
    /// Prefix of the change journal: `journal/ ++ seq (u64 BE)` → table id ++ day.
    pub const JOURNAL: &[u8] = b"journal/";
    /// The lowest journal sequence number still kept.
    pub const JOURNAL_FLOOR: &[u8] = b"journal_floor";
    /// Changes whenever the catalog does.
    pub const CATALOG_VERSION: &[u8] = b"catalog_version";
    /// Present while the catalog has dropped ids whose chunks are not yet deleted.
    pub const SWEEP_PENDING: &[u8] = b"sweep_pending";
    /// Prefix of universes: `universe/ ++ name` → its intervals.
    pub const UNIVERSE: &[u8] = b"universe/";
    /// Prefix of store versions: `version/ ++ number (u64 BE)` → its commit time and symbols.
    pub const VERSION: &[u8] = b"version/";
    /// The newest store version's number (u64 BE).
    pub const LATEST_VERSION: &[u8] = b"latest_version";
    /// The oldest version a read may ask for besides the pinned ones (u64 BE): history
    /// replaced at or below it is dropped.
    pub const HISTORY_FLOOR: &[u8] = b"history_floor";

    /// `version/ ++ number`.
    pub fn version(number: u64) -> Vec<u8> {
        [VERSION, &number.to_be_bytes()[..]].concat()
    }

    /// `universe/ ++ name`.
    pub fn universe(name: &str) -> Vec<u8> {
        [UNIVERSE, name.as_bytes()].concat()
    }

    /// `day/ ++ table id ++ day`.
    pub fn day(table_id: u32, day: super::Day) -> Vec<u8> {
        let mut key = with_id(DAY, table_id);
        key.extend_from_slice(&super::day_bytes(day));
        key
    }

    /// `journal/ ++ seq`.
    pub fn journal(seq: u64) -> Vec<u8> {
        let mut key = JOURNAL.to_vec();
        key.extend_from_slice(&seq.to_be_bytes());
        key
    }

    /// `prefix ++ id (u32 BE)`.
    pub fn with_id(prefix: &[u8], id: u32) -> Vec<u8> {
        let mut key = Vec::with_capacity(prefix.len() + 4);
        key.extend_from_slice(prefix);
        key.extend_from_slice(&id.to_be_bytes());
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{date_of, day_of};
    use chrono::NaiveDate;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn chunk_keys_round_trip_and_sort_like_id_then_day(
            a in (any::<u32>(), -1_000_000i32..1_000_000),
            b in (any::<u32>(), -1_000_000i32..1_000_000),
        ) {
            prop_assert_eq!(parse_chunk_key(&chunk_key(a.0, a.1)), Some(a));
            prop_assert_eq!(chunk_key(a.0, a.1).cmp(&chunk_key(b.0, b.1)), a.cmp(&b));
        }

        #[test]
        fn days_round_trip_through_dates(day in -700_000i32..2_000_000) {
            prop_assert_eq!(day_of(date_of(day)), day);
            prop_assert_eq!(parse_day(&day_bytes(day)), Some(day));
        }
    }

    #[test]
    fn epoch_is_day_zero() {
        assert_eq!(day_of(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()), 1);
        assert_eq!(date_of(-1), NaiveDate::from_ymd_opt(1969, 12, 31).unwrap());
        assert_eq!(parse_chunk_key(b"short"), None);
    }
}
