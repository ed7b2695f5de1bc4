//! The ticket: a read named exactly as `get_data` names it, as JSON, so a client in any language
//! can write one.
//!
//! ```json
//! {"fields": ["close", "pe"], "start": "2020-01-01", "end": "2020-12-31",
//!  "symbols": ["000001.SZ"], "base": "daily_bar", "dates": "dictionary",
//!  "adjust": "forward", "universe": "csi300", "known_at": 1042}
//! ```
//!
//! Everything from the network passes [`Ticket::parse`] first; it refuses what is not exactly
//! this shape, and bounds every length, before the cache sees a name.

use cheetah_core::{Adjust, AsOf, DateLayout, Request};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The most bytes a ticket may have: room for some 50,000 symbols.
pub const MAX_TICKET_BYTES: usize = 1 << 20;
/// The most characters in a field, table or symbol name.
pub const MAX_NAME_CHARS: usize = 256;
/// The most fields one ticket may ask for.
pub const MAX_FIELDS: usize = 10_000;

/// A read, as a client names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ticket {
    /// Field names as `get_data` takes them: `close`, `valuation.pe`, an alias.
    pub fields: Vec<String>,
    /// First date, inclusive, `YYYY-MM-DD`.
    pub start: NaiveDate,
    /// Last date, inclusive, `YYYY-MM-DD`.
    pub end: NaiveDate,
    /// Keep only these symbols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbols: Option<Vec<String>>,
    /// Take the rows from this table's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// How the `date` column travels.
    #[serde(default, skip_serializing_if = "Dates::is_default")]
    pub dates: Dates,
    /// `backward` or `forward`: adjust the price fields of tables with `[table.adjust]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjust: Option<String>,
    /// Keep only the rows of this universe's members on each date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub universe: Option<String>,
    /// Read the store as it was: a version number, or a moment as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_at: Option<KnownAt>,
    /// Read the version this snapshot pins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// `known_at`: a store version's number, or a moment (`"2026-03-01T16:00:00Z"`; without a zone,
/// UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KnownAt {
    /// A version.
    Version(u64),
    /// A moment.
    Moment(String),
}

/// How the `date` column travels: dictionary-encoded (the default: a code per row into the
/// dates that have rows, as pandas keeps a MultiIndex level) or a plain `date32` per row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dates {
    /// `dictionary<values=date32, indices=int32>`.
    #[default]
    Dictionary,
    /// `date32`.
    Date32,
}

impl Dates {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Why a ticket was refused; the message says what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad ticket: {0}; a ticket is JSON like {{\"fields\": [\"close\"], \"start\": \"2020-01-01\", \"end\": \"2020-12-31\"}} (see docs/flight.md, \"The ticket\")")]
pub struct TicketError(pub String);

impl Ticket {
    /// Parses and checks a ticket from the wire.
    ///
    /// # Errors
    /// [`TicketError`] for anything but one JSON object of the documented keys, with names of
    /// bounded length free of control characters.
    pub fn parse(bytes: &[u8]) -> Result<Self, TicketError> {
        if bytes.len() > MAX_TICKET_BYTES {
            return Err(TicketError(format!(
                "it is {} bytes, over the limit of {MAX_TICKET_BYTES}; ask for fewer symbols or fields per read",
                bytes.len()
            )));
        }
        let ticket: Ticket =
            serde_json::from_slice(bytes).map_err(|e| TicketError(format!("it is not a valid ticket: {e}")))?;
        ticket.check()?;
        Ok(ticket)
    }

    fn check(&self) -> Result<(), TicketError> {
        if self.fields.len() > MAX_FIELDS {
            return Err(TicketError(format!("it asks for {} fields; the limit is {MAX_FIELDS}", self.fields.len())));
        }
        for field in &self.fields {
            check_name("field", field)?;
        }
        for symbol in self.symbols.iter().flatten() {
            check_name("symbol", symbol)?;
        }
        if let Some(base) = &self.base {
            check_name("base", base)?;
        }
        if let Some(universe) = &self.universe {
            check_name("universe", universe)?;
        }
        if let Some(snapshot) = &self.snapshot {
            check_name("snapshot", snapshot)?;
        }
        self.as_of()?;
        self.adjusted()?;
        // The rest (no fields, start after end, unknown names) is the read's to refuse, with the
        // message a local read gives.
        Ok(())
    }

    /// The ticket as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a ticket serializes")
    }

    /// The same read over `start..=end`.
    #[must_use]
    pub fn over(&self, start: NaiveDate, end: NaiveDate) -> Self {
        Self { start, end, ..self.clone() }
    }

    /// How it adjusts prices.
    ///
    /// # Errors
    /// [`TicketError`] for a word other than `backward` or `forward`.
    pub fn adjusted(&self) -> Result<Option<Adjust>, TicketError> {
        self.adjust.as_deref().map(str::parse).transpose().map_err(TicketError)
    }

    /// The version it names, if any.
    ///
    /// # Errors
    /// [`TicketError`] for both `known_at` and `snapshot`, or a moment that does not parse.
    pub fn as_of(&self) -> Result<Option<AsOf>, TicketError> {
        match (&self.known_at, &self.snapshot) {
            (Some(_), Some(_)) => Err(TicketError(cheetah_core::VersionError::Both.to_string())),
            (Some(KnownAt::Version(number)), None) => Ok(Some(AsOf::Version(*number))),
            (Some(KnownAt::Moment(text)), None) => {
                check_name("known_at", text)?;
                AsOf::moment(text).map(Some).map_err(|e| TicketError(e.to_string()))
            }
            (None, Some(name)) => Ok(Some(AsOf::Snapshot(name.clone()))),
            (None, None) => Ok(None),
        }
    }

    /// The same read pinned to store version `number`, as every endpoint of one plan is.
    #[must_use]
    pub fn pinned(&self, number: u64) -> Self {
        Self { known_at: Some(KnownAt::Version(number)), snapshot: None, ..self.clone() }
    }

    /// Whether its parts may be read apart: a forward-adjusted read divides by each symbol's
    /// latest factor on the whole read's dates, which a part over earlier dates does not see.
    pub fn splits(&self) -> bool {
        !matches!(self.adjusted(), Ok(Some(Adjust::Forward)))
    }

    /// The cache request it names.
    pub fn request(&self) -> Request {
        let layout = match self.dates {
            Dates::Dictionary => DateLayout::Dictionary,
            Dates::Date32 => DateLayout::Date32,
        };
        let mut request = Request::new(self.start, self.end, self.fields.clone()).dates(layout);
        if let Some(symbols) = &self.symbols {
            request = request.symbols(symbols.clone());
        }
        if let Some(base) = &self.base {
            request = request.base(base.clone());
        }
        if let Ok(Some(adjust)) = self.adjusted() {
            request = request.adjust(adjust);
        }
        if let Some(universe) = &self.universe {
            request = request.universe(universe.clone());
        }
        if let Ok(Some(as_of)) = self.as_of() {
            request = request.as_of(as_of);
        }
        request
    }
}

/// A name is 1 to [`MAX_NAME_CHARS`] characters without control characters. Names are looked up
/// in the catalog, never put into SQL, so any other text is merely an unknown name.
fn check_name(what: &str, name: &str) -> Result<(), TicketError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(TicketError(format!("a {what} name has {chars} characters; names have 1 to {MAX_NAME_CHARS}")));
    }
    if name.chars().any(char::is_control) {
        return Err(TicketError(format!("the {what} name {name:?} holds a control character")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const GOOD: &str = r#"{"fields": ["close", "valuation.pe"], "start": "2020-01-01", "end": "2020-12-31"}"#;

    fn refused(text: &str) -> String {
        Ticket::parse(text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn a_documented_ticket_round_trips() {
        let ticket = Ticket::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(ticket.fields, ["close", "valuation.pe"]);
        assert_eq!(ticket.dates, Dates::Dictionary);
        assert_eq!(Ticket::parse(&ticket.to_bytes()).unwrap(), ticket);
        let full = r#"{"fields": ["close"], "start": "2020-01-01", "end": "2020-01-31", "symbols": ["A"], "base": "bar", "dates": "date32"}"#;
        let full = Ticket::parse(full.as_bytes()).unwrap();
        assert_eq!(
            (full.symbols.as_deref(), full.base.as_deref(), full.dates),
            (Some(&["A".to_string()][..]), Some("bar"), Dates::Date32)
        );
        let part =
            full.over(NaiveDate::from_ymd_opt(2020, 1, 5).unwrap(), NaiveDate::from_ymd_opt(2020, 1, 9).unwrap());
        assert_eq!((part.symbols, part.base, part.dates), (full.symbols, full.base, full.dates));
    }

    #[test]
    fn a_ticket_names_a_version_a_moment_or_a_snapshot() {
        let with = |extra: &str| {
            Ticket::parse(
                format!(r#"{{"fields": ["close"], "start": "2020-01-01", "end": "2020-12-31"{extra}}}"#).as_bytes(),
            )
        };
        assert_eq!(with(r#", "known_at": 12"#).unwrap().as_of().unwrap(), Some(AsOf::Version(12)));
        let moment = with(r#", "known_at": "2026-03-01T16:00:00Z""#).unwrap().as_of().unwrap();
        assert!(matches!(moment, Some(AsOf::Moment(m)) if m.to_rfc3339() == "2026-03-01T16:00:00+00:00"));
        let named = with(r#", "snapshot": "paper""#).unwrap();
        assert_eq!(named.as_of().unwrap(), Some(AsOf::Snapshot("paper".into())));
        let pinned = named.pinned(40);
        assert_eq!((pinned.as_of().unwrap(), pinned.snapshot), (Some(AsOf::Version(40)), None));
        assert_eq!(Ticket::parse(&pinned_bytes(&named)).unwrap().known_at, Some(KnownAt::Version(40)));
        assert!(with(r#", "known_at": 3, "snapshot": "paper""#).unwrap_err().to_string().contains("not both"));
        assert!(with(r#", "known_at": "last tuesday""#).unwrap_err().to_string().contains("not a moment"));
        assert!(with(r#", "known_at": -1"#).unwrap_err().to_string().contains("not a valid ticket"));
    }

    fn pinned_bytes(ticket: &Ticket) -> Vec<u8> {
        ticket.pinned(40).to_bytes()
    }

    #[test]
    fn hostile_tickets_say_what_is_wrong() {
        assert!(refused(r#"{"fields": ["close"], "start": "2020-01-01", "end": "2020-12-31", "drop": 1}"#)
            .contains("unknown field `drop`"));
        assert!(refused(r#"{"fields": "close", "start": "2020-01-01", "end": "2020-12-31"}"#)
            .contains("expected a sequence"));
        assert!(refused(r#"{"fields": ["close"], "start": "2020-13-01", "end": "2020-12-31"}"#)
            .contains("not a valid ticket"));
        assert!(
            refused(r#"{"fields": ["close"], "start": 20200101, "end": "2020-12-31"}"#).contains("not a valid ticket")
        );
        assert!(refused(r#"{"fields": ["a\u0000b"], "start": "2020-01-01", "end": "2020-12-31"}"#).contains("control"));
        assert!(refused(r#"{"fields": ["close"], "start": "2020-01-01", "end": "2020-12-31", "dates": "text"}"#)
            .contains("unknown variant"));
        assert!(refused("").contains("not a valid ticket"));
        assert!(refused("[1, 2]").contains("not a valid ticket"));
        let long = format!(
            r#"{{"fields": ["{}"], "start": "2020-01-01", "end": "2020-12-31"}}"#,
            "x".repeat(MAX_NAME_CHARS + 1)
        );
        assert!(refused(&long).contains("names have 1 to"));
        let huge = format!(
            r#"{{"fields": ["close"], "start": "2020-01-01", "end": "2020-12-31", "symbols": [{}]}}"#,
            vec!["\"ABCDEFGH\""; 200_000].join(",")
        );
        assert!(refused(&huge).contains("over the limit"));
        // Names go to the catalog, never into SQL: this parses, and the cache calls it unknown.
        assert!(Ticket::parse(
            br#"{"fields": ["close; DROP TABLE daily_bar; --"], "start": "2020-01-01", "end": "2020-12-31"}"#
        )
        .is_ok());
    }

    /// A ticket, then the same bytes damaged: a byte replaced, a span cut out, or text spliced in.
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let base = GOOD.as_bytes().to_vec();
        let len = base.len();
        prop_oneof![
            (0..len, any::<u8>()).prop_map({
                let base = base.clone();
                move |(at, byte)| {
                    let mut b = base.clone();
                    b[at] = byte;
                    b
                }
            }),
            (0..len, 0..len).prop_map({
                let base = base.clone();
                move |(a, b)| {
                    let (lo, hi) = (a.min(b), a.max(b));
                    [&base[..lo], &base[hi..]].concat()
                }
            }),
            (0..len, prop::collection::vec(any::<u8>(), 0..64))
                .prop_map(move |(at, junk)| { [&base[..at], &junk[..], &base[at..]].concat() }),
        ]
    }

    /// Any JSON value, nested a few levels.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from("2020-01-01")),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("fields".to_string()),
                        Just("start".to_string()),
                        Just("end".to_string()),
                        Just("symbols".to_string()),
                        Just("base".to_string()),
                        Just("dates".to_string()),
                        Just("known_at".to_string()),
                        Just("snapshot".to_string()),
                        "[a-z]{1,6}"
                    ],
                    inner,
                    0..7
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The fuzz: no input panics, and whatever parses is a ticket the checks allow.
        #[test]
        fn any_bytes_parse_or_are_refused_without_a_panic(bytes in prop_oneof![mutated(), prop::collection::vec(any::<u8>(), 0..256)]) {
            if let Ok(ticket) = Ticket::parse(&bytes) {
                prop_assert!(ticket.fields.len() <= MAX_FIELDS);
                prop_assert_eq!(Ticket::parse(&ticket.to_bytes()).unwrap(), ticket);
            }
        }

        #[test]
        fn any_json_parses_or_is_refused_without_a_panic(value in json()) {
            let bytes = serde_json::to_vec(&value).unwrap();
            match Ticket::parse(&bytes) {
                Ok(ticket) => prop_assert!(ticket.fields.iter().all(|f| check_name("field", f).is_ok())),
                Err(e) => prop_assert!(e.to_string().starts_with("bad ticket: ")),
            }
        }
    }
}
