//! Phone numbers, read one way everywhere: the caller's number in CCAI
//! Platform's events and records, and the number an agent clicks in
//! Kustomer, both become E.164 with the same rules (`phonenumber`, the
//! libphonenumber metadata).
//!
//! A number written with a country code (`+44 …`, or the international
//! prefix `00 44 …`) keeps it; one written without is read in the tenant's
//! region (`phone_region`, default `US`). A number that is not valid in its
//! region is refused rather than guessed.
use phonenumber::country;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// The region (ISO 3166 alpha-2) that numbers without a country code are
/// read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(country::Id);

impl Default for Region {
    /// CCAI Platform's and Kustomer's default market.
    fn default() -> Self {
        Region(country::Id::US)
    }
}

impl Region {
    /// The region with this ISO 3166 code, e.g. `Region::of(country::Id::DE)`.
    pub fn of(id: country::Id) -> Self {
        Region(id)
    }
}

impl FromStr for Region {
    type Err = String;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        code.trim()
            .to_ascii_uppercase()
            .parse::<country::Id>()
            .map(Region)
            .map_err(|_| format!("`{code}` is not an ISO 3166 region code (e.g. `US`, `GB`)"))
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Why a number could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{number:?} is not a valid phone number{hint}")]
pub struct NumberError {
    /// The number as given.
    pub number: String,
    hint: String,
}

/// How many numbers each thread remembers having read, per region.
const REMEMBERED: usize = 4096;

/// The longest text remembered: phone numbers are short, and a long text
/// (whatever a request carries) is read each time instead of held.
const LONGEST: usize = 64;

/// A thread's numbers already read, per region, with what reading gave.
type Read = Vec<(Region, HashMap<String, Result<String, NumberError>>)>;

thread_local! {
    static READ: RefCell<Read> = const { RefCell::new(Vec::new()) };
}

/// The E.164 form of `raw`, read in `region` when it has no country code.
///
/// A session's number comes again with every update of it, and reading one
/// with libphonenumber (parse, validate, format) takes about 78,000
/// instructions, a quarter of what the intake spends on an event; the
/// answer for a text and a region never changes, so each thread remembers
/// up to 4,096 answers per region (and forgets them all when full).
pub fn e164(raw: &str, region: Region) -> Result<String, NumberError> {
    READ.with(|read| {
        let mut read = read.borrow_mut();
        let index = match read.iter().position(|(r, _)| *r == region) {
            Some(index) => index,
            None => {
                read.push((region, HashMap::new()));
                read.len() - 1
            }
        };
        let known = &mut read[index].1;
        if let Some(answer) = known.get(raw) {
            return answer.clone();
        }
        let answer = read_number(raw, region);
        if raw.len() <= LONGEST {
            if known.len() >= REMEMBERED {
                known.clear();
            }
            known.insert(raw.to_string(), answer.clone());
        }
        answer
    })
}

fn read_number(raw: &str, region: Region) -> Result<String, NumberError> {
    let fail = |hint: String| NumberError {
        number: raw.to_string(),
        hint,
    };
    let trimmed = raw.trim();
    // `00` is the international prefix of most of the world; libphonenumber
    // only knows it as such in regions that dial it, so it is read as `+`
    // everywhere.
    let international;
    let text = match trimmed.strip_prefix("00") {
        Some(rest) => {
            international = format!("+{rest}");
            international.as_str()
        }
        None => trimmed,
    };
    let parsed = phonenumber::parse(Some(region.0), text).map_err(|e| fail(format!(": {e}")))?;
    if !phonenumber::is_valid(&parsed) {
        return Err(fail(format!(
            " (no such number in its region; read in {region})"
        )));
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// Reads libphonenumber's metadata now: otherwise the first number read
/// after a start does (about 100 ms), stalling the request it is part of.
pub fn warm() {
    let started = std::time::Instant::now();
    let _ = e164("+14155550100", Region::default());
    tracing::debug!(
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "phone number metadata loaded"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_read_again_gives_the_same_answer_and_the_memory_stays_bounded() {
        let gb = Region::of(country::Id::GB);
        for (raw, region) in [
            ("(415) 555-0122", Region::default()),
            ("020 7946 0958", gb),
            ("020 7946 0958", Region::default()),
            ("anonymous", Region::default()),
        ] {
            let first = e164(raw, region);
            assert_eq!(e164(raw, region), first, "{raw} in {region}");
            assert_eq!(read_number(raw, region), first, "{raw} in {region}");
        }
        for i in 0..REMEMBERED + 10 {
            let _ = e164(&format!("+1 415 555 {:04}", i % 10_000), Region::default());
        }
        let long = format!("+1 415 555 0100{}", " ".repeat(LONGEST));
        assert_eq!(
            e164(&long, Region::default()).as_deref(),
            Ok("+14155550100")
        );
        READ.with(|read| {
            for (_, known) in read.borrow().iter() {
                assert!(known.len() <= REMEMBERED, "{} remembered", known.len());
                assert!(!known.contains_key(&long), "a long text is not held");
            }
        });
    }

    #[test]
    fn pn1_numbers_with_a_country_code_keep_it() {
        for (raw, want) in [
            ("+1 415-555-0101", "+14155550101"),
            ("+14155550101", "+14155550101"),
            ("+44 20 7946 0958", "+442079460958"),
            ("0044 20 7946 0958", "+442079460958"),
            ("+1 339-219-5276", "+13392195276"),
            ("+1 212-200-0000", "+12122000000"),
            ("+1 514-555-0123", "+15145550123"),
        ] {
            assert_eq!(e164(raw, Region::default()).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn pn1_national_numbers_are_read_in_the_tenant_region() {
        let us = Region::default();
        for raw in ["(415) 555-0122", "415.555.0122", "1 415 555 0122"] {
            assert_eq!(e164(raw, us).as_deref(), Ok("+14155550122"), "{raw}");
        }
        let de: Region = "de".parse().expect("region");
        assert_eq!(e164("030 901820", de).as_deref(), Ok("+4930901820"));
        let gb: Region = "GB".parse().expect("region");
        assert_eq!(e164("020 7946 0958", gb).as_deref(), Ok("+442079460958"));
    }

    #[test]
    fn pn1_what_is_not_a_number_in_the_region_is_refused() {
        let us = Region::default();
        for raw in ["", "anonymous", "call me", "12", "+1 000", "020 7946 0958"] {
            assert!(e164(raw, us).is_err(), "{raw:?} accepted");
        }
        assert!("XX".parse::<Region>().is_err());
    }

    #[test]
    fn c2c1_numbers_as_kustomer_shows_them_become_e164() {
        for raw in [
            "+1 415-555-0101",
            "(415) 555-0101",
            "415.555.0101",
            "+14155550101",
        ] {
            assert_eq!(
                e164(raw, Region::default()).expect(raw),
                "+14155550101",
                "{raw}"
            );
        }
        assert_eq!(
            e164("030 901820", Region::of(country::Id::DE)).expect("de"),
            "+4930901820"
        );
    }

    #[test]
    fn c2c3_garbage_is_not_a_number() {
        for raw in ["", "call me", "12", "+1 000"] {
            assert!(e164(raw, Region::default()).is_err(), "{raw} accepted");
        }
    }
}
