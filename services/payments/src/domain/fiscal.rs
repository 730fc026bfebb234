//! Italian fiscal codes (DOMAIN.md "Check digits"): the 11-digit numeric fiscal code of a body
//! (the partita IVA form, Luhn check digit) and the 16-character codice fiscale of a person
//! (check letter, omocodia). A debtor may have either; a creditor body always has the numeric
//! one.
//!
//! Codes are taken as given: uppercase, no spaces. Nothing here logs or formats a code into a
//! message, since a codice fiscale is personal data.

/// Why a fiscal code was refused. The messages never quote the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FiscalCodeError {
    /// Neither 11 digits nor 16 characters.
    #[error("a fiscal code is 11 digits or 16 uppercase characters")]
    Length,
    /// 11 characters that are not all ASCII digits.
    #[error("an 11-character fiscal code must be all digits")]
    NumericFormat,
    /// The Luhn check digit of an 11-digit code does not match.
    #[error("the check digit of the 11-digit fiscal code is wrong")]
    NumericCheckDigit,
    /// 16 characters not in the codice fiscale layout (letters, digits, month letter).
    #[error("the codice fiscale does not have the layout of 6 letters, birth date, place code")]
    PersonalFormat,
    /// The birth day of a codice fiscale is not a day of its month.
    #[error("the codice fiscale does not encode a real birth date")]
    PersonalBirthDate,
    /// The check letter of a codice fiscale does not match.
    #[error("the check letter of the codice fiscale is wrong")]
    PersonalCheckLetter,
}

/// Which kind of fiscal code a valid code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FiscalCodeKind {
    /// 11 digits (partita IVA / numeric fiscal code of a body or firm).
    Numeric,
    /// 16 characters (codice fiscale of a natural person).
    Personal,
}

/// The Luhn check digit of the first 10 digits of an 11-digit fiscal code (DOMAIN.md: sum the
/// digits in odd positions 1st..9th; double each even-position digit 2nd..10th, subtracting 9
/// when over 9; the check digit is `(10 - total mod 10) mod 10`). `None` unless given exactly
/// 10 ASCII digits.
pub fn numeric_check_digit(first_ten: &str) -> Option<u8> {
    let bytes = first_ten.as_bytes();
    if bytes.len() != 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let total: u32 = bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            // Index 0 is the 1st (odd) position.
            if i % 2 == 0 {
                d
            } else if d * 2 > 9 {
                d * 2 - 9
            } else {
                d * 2
            }
        })
        .sum();
    u8::try_from((10 - total % 10) % 10).ok()
}

/// Checks an 11-digit numeric fiscal code (partita IVA form): digits only, Luhn check digit.
pub fn check_numeric(code: &str) -> Result<(), FiscalCodeError> {
    if code.len() != 11 {
        return Err(FiscalCodeError::Length);
    }
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FiscalCodeError::NumericFormat);
    }
    let expected = numeric_check_digit(&code[..10]).ok_or(FiscalCodeError::NumericFormat)?;
    if code.as_bytes()[10] - b'0' == expected {
        Ok(())
    } else {
        Err(FiscalCodeError::NumericCheckDigit)
    }
}

/// The letters that replace the digits 0-9 in omocodia.
const OMOCODIA: &[u8; 10] = b"LMNPQRSTUV";
/// The month letters, January to December.
const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";
/// The values of characters in odd positions (index: digit value, or letter index A=0).
const ODD_VALUES: [u32; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];
/// The 0-based indices of the seven digit positions that omocodia may turn into letters.
const DIGIT_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];

/// The check letter of the first 15 characters of a codice fiscale (DOMAIN.md: odd positions
/// through the table, even positions by digit value or letter index, `'A' + sum mod 26`).
/// `None` unless given exactly 15 uppercase ASCII letters or digits.
pub fn personal_check_letter(first_fifteen: &str) -> Option<char> {
    let bytes = first_fifteen.as_bytes();
    if bytes.len() != 15 {
        return None;
    }
    let mut total = 0u32;
    for (i, b) in bytes.iter().enumerate() {
        let value = match b {
            b'0'..=b'9' => usize::from(b - b'0'),
            b'A'..=b'Z' => usize::from(b - b'A'),
            _ => return None,
        };
        // Index 0 is the 1st (odd) position.
        total += if i % 2 == 0 {
            ODD_VALUES[value]
        } else {
            u32::try_from(value).ok()?
        };
    }
    let letter = b'A' + u8::try_from(total % 26).ok()?;
    Some(char::from(letter))
}

/// The value of a digit position of a codice fiscale, reading omocodia letters as digits.
fn omocodia_digit(b: u8) -> Option<u32> {
    if b.is_ascii_digit() {
        return Some(u32::from(b - b'0'));
    }
    OMOCODIA
        .iter()
        .position(|&l| l == b)
        .and_then(|p| u32::try_from(p).ok())
}

/// Checks a 16-character codice fiscale: layout (omocodia letters allowed in the seven digit
/// positions), a real day of the month (women add 40), and the check letter.
pub fn check_personal(code: &str) -> Result<(), FiscalCodeError> {
    let bytes = code.as_bytes();
    if bytes.len() != 16 {
        return Err(FiscalCodeError::Length);
    }
    let letters_at = [0usize, 1, 2, 3, 4, 5, 8, 11, 15];
    if !letters_at.iter().all(|&i| bytes[i].is_ascii_uppercase())
        || !DIGIT_POSITIONS
            .iter()
            .all(|&i| omocodia_digit(bytes[i]).is_some())
    {
        return Err(FiscalCodeError::PersonalFormat);
    }
    let month = MONTHS
        .iter()
        .position(|&m| m == bytes[8])
        .ok_or(FiscalCodeError::PersonalFormat)?;
    let digit = |i: usize| omocodia_digit(bytes[i]).ok_or(FiscalCodeError::PersonalFormat);
    let year = digit(6)? * 10 + digit(7)?;
    let mut day = digit(9)? * 10 + digit(10)?;
    if day > 40 {
        day -= 40;
    }
    // The century is not in the code: 29 February is allowed in any year divisible by 4.
    let days_in_month = match month {
        1 if year % 4 == 0 => 29,
        1 => 28,
        3 | 5 | 8 | 10 => 30,
        _ => 31,
    };
    if day == 0 || day > days_in_month {
        return Err(FiscalCodeError::PersonalBirthDate);
    }
    let expected = personal_check_letter(&code[..15]).ok_or(FiscalCodeError::PersonalFormat)?;
    if char::from(bytes[15]) == expected {
        Ok(())
    } else {
        Err(FiscalCodeError::PersonalCheckLetter)
    }
}

/// Checks a debtor's fiscal code, either kind, and says which it is.
pub fn check_any(code: &str) -> Result<FiscalCodeKind, FiscalCodeError> {
    match code.len() {
        11 => check_numeric(code).map(|()| FiscalCodeKind::Numeric),
        16 => check_personal(code).map(|()| FiscalCodeKind::Personal),
        _ => Err(FiscalCodeError::Length),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DOMAIN.md "Check digits", partita IVA: `00743110157` -> check digit 7 (Luhn).
    #[test]
    fn luhn_matches_the_domain_example() {
        assert_eq!(numeric_check_digit("0074311015"), Some(7));
        assert_eq!(numeric_check_digit("007431101"), None);
        assert_eq!(check_numeric("00743110157"), Ok(()));
        assert_eq!(check_any("00743110157"), Ok(FiscalCodeKind::Numeric));
    }

    /// DOMAIN.md "Check digits": any changed digit breaks the Luhn check (a single-digit change
    /// always changes the sum mod 10).
    #[test]
    fn luhn_catches_every_single_digit_change() {
        let good = b"00743110157";
        for i in 0..good.len() {
            for d in b'0'..=b'9' {
                if d == good[i] {
                    continue;
                }
                let mut bad = *good;
                bad[i] = d;
                let bad = std::str::from_utf8(&bad).expect("ASCII");
                assert_eq!(
                    check_numeric(bad),
                    Err(FiscalCodeError::NumericCheckDigit),
                    "{bad}"
                );
            }
        }
        assert_eq!(
            check_numeric("0074311015A"),
            Err(FiscalCodeError::NumericFormat)
        );
        assert_eq!(check_numeric("0074311015"), Err(FiscalCodeError::Length));
    }

    /// DOMAIN.md "Check digits", codice fiscale: `RCCMNL83S18D969` -> `H`.
    #[test]
    fn codice_fiscale_check_letter_matches_the_domain_example() {
        assert_eq!(personal_check_letter("RCCMNL83S18D969"), Some('H'));
        assert_eq!(check_personal("RCCMNL83S18D969H"), Ok(()));
        assert_eq!(check_any("RCCMNL83S18D969H"), Ok(FiscalCodeKind::Personal));
        assert_eq!(
            check_personal("RCCMNL83S18D969K"),
            Err(FiscalCodeError::PersonalCheckLetter)
        );
    }

    /// DOMAIN.md "Check digits": in omocodia any of the 7 digit positions may be replaced by
    /// `LMNPQRSTUV`; the check letter is computed on the code as written.
    #[test]
    fn omocodia_codes_are_accepted_with_their_own_check_letter() {
        // The last place digit 9 -> V; then the year digits 8, 3 -> U, P.
        assert_eq!(check_personal("RCCMNL83S18D96VW"), Ok(()));
        assert_eq!(check_personal("RCCMNLUPS18D969Q"), Ok(()));
        // The plain code's check letter no longer fits once a digit is substituted.
        assert_eq!(
            check_personal("RCCMNL83S18D96VH"),
            Err(FiscalCodeError::PersonalCheckLetter)
        );
        // Only `LMNPQRSTUV` substitute digits.
        assert_eq!(
            check_personal("RCCMNL83S18D96AH"),
            Err(FiscalCodeError::PersonalFormat)
        );
    }

    /// DOMAIN.md "Check digits": month letters come from `ABCDEHLMPRST`; women add 40 to the day.
    #[test]
    fn codice_fiscale_layout_and_birth_date() {
        // `F` is not a month letter.
        assert_eq!(
            check_personal("RCCMNL83F18D969H"),
            Err(FiscalCodeError::PersonalFormat)
        );
        // Day 58 is the 18th for a woman: the layout passes, only the check letter decides.
        let woman = format!(
            "RCCMNL83S58D969{}",
            personal_check_letter("RCCMNL83S58D969").expect("15 characters")
        );
        assert_eq!(check_personal(&woman), Ok(()));
        // 31 November (S) does not exist.
        let bad_day = format!(
            "RCCMNL83S31D969{}",
            personal_check_letter("RCCMNL83S31D969").expect("15 characters")
        );
        assert_eq!(
            check_personal(&bad_day),
            Err(FiscalCodeError::PersonalBirthDate)
        );
        assert_eq!(
            check_personal("rccmnl83s18d969h"),
            Err(FiscalCodeError::PersonalFormat)
        );
        assert_eq!(check_any("RCCMNL83S18D969"), Err(FiscalCodeError::Length));
    }
}
