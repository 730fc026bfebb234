//! IUVs and notice numbers (DOMAIN.md "Payments", pagoPA): the notice number is 18 digits, the
//! aux digit followed by the 17-digit IUV. Unione always uses aux digit 3:
//!
//! ```text
//! notice = 3 | segregation code (2) | base (13) | check (2)
//! IUV    =     segregation code (2) | base (13) | check (2)
//! check  = (3 ‖ segregation ‖ base) mod 93, zero-padded to 2 digits
//! ```
//!
//! The base is the 4-digit year followed by a 9-digit sequence number that storage draws from
//! a counter per comune and year, so IUVs are unique per creditor.
//!
//! Published pagoPA samples often fail the check: [`validate_notice_number`] tells a
//! malformed number apart from a well-formed one whose check digits are wrong.

use chrono::{DateTime, Datelike, Duration, Utc};

/// The aux digit of every notice Unione issues.
pub const AUX_DIGIT: u8 = 3;
/// The largest sequence number of a year (9 digits).
pub const MAX_SEQUENCE: i64 = 999_999_999;
/// The modulus of the check digits.
const CHECK_MODULUS: u64 = 93;

/// Why a notice component could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    /// A segregation code is two ASCII digits.
    #[error("a segregation code is two digits")]
    SegregationCode,
    /// The year of an IUV base is 4 digits (1000-9999).
    #[error("the year of an IUV base must have 4 digits")]
    Year,
    /// The sequence number of an IUV base is 1 to 999,999,999.
    #[error("the IUV sequence number must be 1 to 999999999")]
    Sequence,
    /// An IUV base is 13 digits.
    #[error("an IUV base is 13 digits")]
    Base,
}

/// A pagoPA segregation code: two digits that the creditor uses to tell its IUV ranges apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegregationCode(String);

impl SegregationCode {
    /// Parses two ASCII digits.
    pub fn parse(code: &str) -> Result<Self, NoticeError> {
        if code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(code.to_owned()))
        } else {
            Err(NoticeError::SegregationCode)
        }
    }

    /// The two digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The 13-digit base of an IUV: 4-digit year and 9-digit sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IuvBase(String);

impl IuvBase {
    /// The base for sequence number `sequence` (1..=[`MAX_SEQUENCE`]) of `year`.
    pub fn new(year: i32, sequence: i64) -> Result<Self, NoticeError> {
        if !(1000..=9999).contains(&year) {
            return Err(NoticeError::Year);
        }
        if !(1..=MAX_SEQUENCE).contains(&sequence) {
            return Err(NoticeError::Sequence);
        }
        Ok(Self(format!("{year:04}{sequence:09}")))
    }

    /// Reads a 13-digit base as written (e.g. `2023000000001`), checking only its digits.
    pub fn parse(base: &str) -> Result<Self, NoticeError> {
        if base.len() == 13 && base.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(base.to_owned()))
        } else {
            Err(NoticeError::Base)
        }
    }

    /// The 13 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `(3 ‖ leading) mod 93` for the 15 digits after the aux digit; `None` unless 15 ASCII digits.
fn check_of(after_aux: &str) -> Option<u8> {
    if after_aux.len() != 15 || !after_aux.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = after_aux.parse().ok()?;
    let number = u64::from(AUX_DIGIT) * 10u64.pow(15) + value;
    u8::try_from(number % CHECK_MODULUS).ok()
}

/// The check digits of an IUV with aux digit 3: `(3 ‖ segregation ‖ base) mod 93`.
pub fn check_digits(segregation: &SegregationCode, base: &IuvBase) -> u8 {
    let digits = format!("{}{}", segregation.as_str(), base.as_str());
    check_of(&digits).expect("a segregation code and a base are 15 ASCII digits")
}

/// A 17-digit IUV built by Unione (aux digit 3): segregation code, base, check digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Iuv(String);

impl Iuv {
    /// The IUV of `base` under `segregation`, with its check digits.
    pub fn new(segregation: &SegregationCode, base: &IuvBase) -> Self {
        let check = check_digits(segregation, base);
        Self(format!(
            "{}{}{check:02}",
            segregation.as_str(),
            base.as_str()
        ))
    }

    /// The 17 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 18-digit notice number: the aux digit 3 followed by the IUV.
    pub fn notice_number(&self) -> NoticeNumber {
        NoticeNumber(format!("{AUX_DIGIT}{}", self.0))
    }
}

impl std::fmt::Display for Iuv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An 18-digit notice number with aux digit 3 and valid check digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NoticeNumber(String);

impl NoticeNumber {
    /// The 18 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 17-digit IUV inside it.
    pub fn iuv(&self) -> &str {
        &self.0[1..]
    }

    /// The segregation code inside it.
    pub fn segregation_code(&self) -> &str {
        &self.0[1..3]
    }
}

impl std::fmt::Display for NoticeNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a notice number was refused: malformed ([`Self::is_well_formed`] false), or well formed
/// with wrong check digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoticeNumberError {
    /// Not 18 characters.
    #[error("a notice number is 18 digits")]
    Length,
    /// Not all ASCII digits.
    #[error("a notice number is made of digits only")]
    NotDigits,
    /// An aux digit other than 3 (the only one Unione issues and checks).
    #[error("the aux digit is {0}, not 3")]
    AuxDigit(u8),
    /// Well formed, but the last two digits are not `(3 ‖ segregation ‖ base) mod 93`.
    #[error("the check digits are {found:02}, expected {expected:02}")]
    CheckDigits {
        /// What the check digits should be.
        expected: u8,
        /// What the number carries.
        found: u8,
    },
}

impl NoticeNumberError {
    /// True when the number is well formed (18 digits, aux digit 3) and only its check digits
    /// are wrong.
    pub fn is_well_formed(&self) -> bool {
        matches!(self, Self::CheckDigits { .. })
    }
}

/// Checks that `number` is well formed (18 ASCII digits, aux digit 3) without its check digits.
pub fn check_well_formed(number: &str) -> Result<(), NoticeNumberError> {
    let b = number.as_bytes();
    if !b.iter().all(u8::is_ascii_digit) {
        return Err(NoticeNumberError::NotDigits);
    }
    if b.len() != 18 {
        return Err(NoticeNumberError::Length);
    }
    if b[0] - b'0' != AUX_DIGIT {
        return Err(NoticeNumberError::AuxDigit(b[0] - b'0'));
    }
    Ok(())
}

/// Validates a notice number: well formed (see [`check_well_formed`]) and its check digits
/// right. The error says which of the two failed.
pub fn validate_notice_number(number: &str) -> Result<NoticeNumber, NoticeNumberError> {
    check_well_formed(number)?;
    let expected = check_of(&number[1..16]).expect("checked: 18 ASCII digits");
    let b = number.as_bytes();
    let found = (b[16] - b'0') * 10 + (b[17] - b'0');
    if found == expected {
        Ok(NoticeNumber(number.to_owned()))
    } else {
        Err(NoticeNumberError::CheckDigits { expected, found })
    }
}

/// The year of an IUV created at `instant`: the calendar year in Italy. New Year always falls
/// in winter time (CET, UTC+1), so the Italian year is the UTC year one hour later.
pub fn iuv_year(instant: DateTime<Utc>) -> i32 {
    (instant + Duration::hours(1)).year()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// DOMAIN.md "Payments": segregation 01, base 2023000000001 -> 3012023000000001 mod 93 = 48
    /// -> IUV `01202300000000148`, notice `301202300000000148`.
    #[test]
    fn the_domain_example_exactly() {
        let seg = SegregationCode::parse("01").expect("two digits");
        let base = IuvBase::new(2023, 1).expect("valid");
        assert_eq!(base.as_str(), "2023000000001");
        assert_eq!(IuvBase::parse("2023000000001"), Ok(base.clone()));
        assert_eq!(check_digits(&seg, &base), 48);
        let iuv = Iuv::new(&seg, &base);
        assert_eq!(iuv.as_str(), "01202300000000148");
        let notice = iuv.notice_number();
        assert_eq!(notice.as_str(), "301202300000000148");
        assert_eq!(notice.iuv(), "01202300000000148");
        assert_eq!(notice.segregation_code(), "01");
        assert_eq!(validate_notice_number("301202300000000148"), Ok(notice));
    }

    /// DOMAIN.md "Payments": check digits are zero-padded to two digits.
    #[test]
    fn check_digits_are_zero_padded() {
        let seg = SegregationCode::parse("01").expect("two digits");
        let padded = (1..=200)
            .map(|n| Iuv::new(&seg, &IuvBase::new(2026, n).expect("valid")))
            .find(|iuv| iuv.as_str().as_bytes()[15] == b'0')
            .expect("some check below 10 among 200 sequence numbers");
        assert_eq!(padded.as_str().len(), 17);
        assert!(validate_notice_number(padded.notice_number().as_str()).is_ok());
    }

    /// DOMAIN.md "Payments": keep "well-formed" and "check digits valid" apart.
    #[test]
    fn well_formed_with_bad_check_is_told_apart_from_malformed() {
        let err = validate_notice_number("301202300000000149").expect_err("bad check");
        assert_eq!(
            err,
            NoticeNumberError::CheckDigits {
                expected: 48,
                found: 49
            }
        );
        assert!(err.is_well_formed());
        assert_eq!(check_well_formed("301202300000000149"), Ok(()));

        for (malformed, why) in [
            ("30120230000000014", NoticeNumberError::Length),
            ("3012023000000001488", NoticeNumberError::Length),
            ("30120230000000014A", NoticeNumberError::NotDigits),
            ("001202300000000148", NoticeNumberError::AuxDigit(0)),
        ] {
            let err = validate_notice_number(malformed).expect_err(malformed);
            assert_eq!(err, why, "{malformed}");
            assert!(!err.is_well_formed(), "{malformed}");
        }
    }

    #[test]
    fn components_are_bounded() {
        assert!(SegregationCode::parse("1").is_err());
        assert!(SegregationCode::parse("0a").is_err());
        assert_eq!(IuvBase::new(2026, 0), Err(NoticeError::Sequence));
        assert_eq!(
            IuvBase::new(2026, MAX_SEQUENCE + 1),
            Err(NoticeError::Sequence)
        );
        assert_eq!(IuvBase::new(999, 1), Err(NoticeError::Year));
        assert_eq!(IuvBase::parse("202300000001"), Err(NoticeError::Base));
        assert_eq!(IuvBase::parse("202300000000a"), Err(NoticeError::Base));
        assert_eq!(
            IuvBase::new(2026, MAX_SEQUENCE).expect("valid").as_str(),
            "2026999999999"
        );
    }

    /// The year of the base is the Italian calendar year: 23:30 UTC on 31 December is already
    /// New Year's Day in Italy (CET, UTC+1).
    #[test]
    fn the_year_is_italian() {
        let before = Utc
            .with_ymd_and_hms(2025, 12, 31, 22, 59, 59)
            .single()
            .expect("a real instant");
        let after = Utc
            .with_ymd_and_hms(2025, 12, 31, 23, 0, 0)
            .single()
            .expect("a real instant");
        assert_eq!(iuv_year(before), 2025);
        assert_eq!(iuv_year(after), 2026);
    }
}
