//! Money (DOMAIN.md "Payments"): amounts are integer euro cents (`i64`), never floating point.
//! Decimal euros (`\d+\.\d{2}`, 0.01 to 999999999.99) appear only at a wire boundary that
//! needs them: [`format_euros`] writes them and [`parse_euros`] reads them back, strictly.

/// The smallest amount of a payment, in cents (0.01 euro).
pub const MIN_CENTS: i64 = 1;
/// The largest amount of a payment, in cents (999,999,999.99 euro).
pub const MAX_CENTS: i64 = 99_999_999_999;

/// Why an amount was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not `digits.dd`.
    #[error("an amount in euros is written as digits, a dot and two decimals (1234.56)")]
    Format,
    /// Outside 0.01..=999999999.99 euros.
    #[error("an amount must be from 0.01 to 999999999.99 euros")]
    OutOfRange,
}

/// Checks that an amount in cents is payable: [`MIN_CENTS`] to [`MAX_CENTS`].
pub fn check_cents(cents: i64) -> Result<i64, MoneyError> {
    if (MIN_CENTS..=MAX_CENTS).contains(&cents) {
        Ok(cents)
    } else {
        Err(MoneyError::OutOfRange)
    }
}

/// Cents as decimal euros: `123456` -> `1234.56`, `5` -> `0.05`, `-250` -> `-2.50`. Any `i64`
/// is written (totals may be zero or negative); a wire field that carries only payable amounts
/// should [`check_cents`] first.
pub fn format_euros(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Reads decimal euros strictly (`\d+\.\d{2}`: no sign, no spaces, no thousands separators,
/// exactly two decimals) into cents, within 0.01..=999999999.99.
pub fn parse_euros(text: &str) -> Result<i64, MoneyError> {
    let (units, decimals) = text.split_once('.').ok_or(MoneyError::Format)?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(units) || decimals.len() != 2 || !all_digits(decimals) {
        return Err(MoneyError::Format);
    }
    // Leading zeros are allowed by the pattern; they cannot overflow, other digits can.
    let significant = units.trim_start_matches('0');
    if significant.len() > 9 {
        return Err(MoneyError::OutOfRange);
    }
    let units: i64 = if significant.is_empty() {
        0
    } else {
        significant.parse().map_err(|_| MoneyError::Format)?
    };
    let decimals: i64 = decimals.parse().map_err(|_| MoneyError::Format)?;
    check_cents(units * 100 + decimals)
}

/// The sum of amounts in cents, or `None` on overflow.
pub fn checked_sum(amounts: impl IntoIterator<Item = i64>) -> Option<i64> {
    amounts
        .into_iter()
        .try_fold(0i64, |acc, cents| acc.checked_add(cents))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DOMAIN.md "Payments": decimal euros are `\d+\.\d{2}`, written from integer cents.
    #[test]
    fn formatting() {
        assert_eq!(format_euros(123_456), "1234.56");
        assert_eq!(format_euros(1), "0.01");
        assert_eq!(format_euros(10), "0.10");
        assert_eq!(format_euros(100), "1.00");
        assert_eq!(format_euros(0), "0.00");
        assert_eq!(format_euros(MAX_CENTS), "999999999.99");
        assert_eq!(format_euros(-250), "-2.50");
        assert_eq!(format_euros(i64::MIN), "-92233720368547758.08");
    }

    /// DOMAIN.md "Payments": `\d+\.\d{2}` within 0.01..999999999.99, read strictly.
    #[test]
    fn parsing_is_strict() {
        assert_eq!(parse_euros("1234.56"), Ok(123_456));
        assert_eq!(parse_euros("0.01"), Ok(1));
        assert_eq!(parse_euros("999999999.99"), Ok(MAX_CENTS));
        assert_eq!(parse_euros("0001.00"), Ok(100));
        for bad in [
            "", "1", "1.", ".50", "1.5", "1.500", "1,50", "+1.00", "-1.00", " 1.00", "1.00 ",
            "1e3.00", "1_000.00", "1.0a", "１.00", "1..00",
        ] {
            assert_eq!(parse_euros(bad), Err(MoneyError::Format), "{bad:?}");
        }
        for out in [
            "0.00",
            "000.00",
            "1000000000.00",
            "99999999999999999999999.00",
        ] {
            assert_eq!(parse_euros(out), Err(MoneyError::OutOfRange), "{out:?}");
        }
    }

    /// Formatting then parsing gives the same cents for every payable amount tried.
    #[test]
    fn round_trip() {
        for cents in [
            1,
            9,
            10,
            99,
            100,
            101,
            12_345,
            1_000_000,
            MAX_CENTS - 1,
            MAX_CENTS,
        ] {
            assert_eq!(parse_euros(&format_euros(cents)), Ok(cents));
        }
    }

    #[test]
    fn bounds_and_sums() {
        assert_eq!(check_cents(0), Err(MoneyError::OutOfRange));
        assert_eq!(check_cents(-1), Err(MoneyError::OutOfRange));
        assert_eq!(check_cents(MAX_CENTS + 1), Err(MoneyError::OutOfRange));
        assert_eq!(check_cents(1), Ok(1));
        assert_eq!(checked_sum([1, 2, 3]), Some(6));
        assert_eq!(checked_sum([i64::MAX, 1]), None);
        assert_eq!(checked_sum([]), Some(0));
    }
}
