//! Italian IBANs (ISO 13616), the accounts a transfer credits: 27 characters, `IT`, two check
//! digits (mod 97), then the BBAN: the CIN letter, the ABI (5 digits), the CAB (5 digits) and
//! the account number (12 letters or digits).
//!
//! The electronic form only: uppercase, no spaces. The CIN letter is checked for its format,
//! not recomputed.

/// Length of an Italian IBAN.
pub const LENGTH: usize = 27;

/// Why an IBAN was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IbanError {
    /// Not 27 characters.
    #[error("an Italian IBAN is 27 characters (electronic form, no spaces)")]
    Length,
    /// Not starting with `IT`.
    #[error("an Italian IBAN starts with IT")]
    Country,
    /// Not `IT`, 2 digits, a letter (CIN), 10 digits (ABI, CAB), 12 letters or digits.
    #[error(
        "the IBAN does not have the Italian layout: IT, 2 check digits, CIN letter, ABI, CAB, account"
    )]
    Format,
    /// The ISO 13616 check digits do not match (mod 97).
    #[error("the IBAN check digits are wrong")]
    CheckDigits,
}

/// The ISO 13616 remainder of an IBAN: the first four characters moved to the end, letters
/// read as 10..35, the whole number mod 97. A valid IBAN gives 1. `None` on a character that is
/// not an ASCII digit or uppercase letter.
pub fn mod97(iban: &str) -> Option<u32> {
    if iban.len() < 4 {
        return None;
    }
    let (head, tail) = iban.as_bytes().split_at(4);
    let mut rem = 0u32;
    for &b in tail.iter().chain(head) {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return None,
        };
        rem = if value >= 10 {
            (rem * 100 + value) % 97
        } else {
            (rem * 10 + value) % 97
        };
    }
    Some(rem)
}

/// Checks an Italian IBAN: length, country, layout (CIN letter, ABI and CAB digits, account)
/// and the ISO 13616 check digits.
pub fn check(iban: &str) -> Result<(), IbanError> {
    let b = iban.as_bytes();
    if b.len() != LENGTH {
        return Err(IbanError::Length);
    }
    if &b[..2] != b"IT" {
        return Err(IbanError::Country);
    }
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    let layout = digits(2..4)
        && b[4].is_ascii_uppercase()
        && digits(5..15)
        && b[15..]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
    if !layout {
        return Err(IbanError::Format);
    }
    match mod97(iban) {
        Some(1) => Ok(()),
        _ => Err(IbanError::CheckDigits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "IT60X0542811101000000123456";

    /// ISO 13616 (the IBAN check digits DOMAIN.md "Payments" requires of every transfer): a
    /// valid Italian IBAN leaves remainder 1 mod 97.
    #[test]
    fn a_valid_italian_iban_passes() {
        assert_eq!(mod97(VALID), Some(1));
        assert_eq!(check(VALID), Ok(()));
    }

    /// ISO 13616: mod 97 catches every single changed digit.
    #[test]
    fn every_changed_digit_is_caught() {
        for i in 5..LENGTH {
            let mut bad = VALID.as_bytes().to_vec();
            bad[i] = if bad[i] == b'9' { b'0' } else { bad[i] + 1 };
            let bad = String::from_utf8(bad).expect("ASCII");
            assert_eq!(check(&bad), Err(IbanError::CheckDigits), "{bad}");
        }
        assert_eq!(
            check("IT61X0542811101000000123456"),
            Err(IbanError::CheckDigits)
        );
    }

    /// The Italian layout: 27 characters, IT, a CIN letter, digits for ABI and CAB.
    #[test]
    fn layout_is_checked() {
        assert_eq!(check("IT60X054281110100000012345"), Err(IbanError::Length));
        assert_eq!(
            check("DE60X0542811101000000123456"),
            Err(IbanError::Country)
        );
        assert_eq!(check("IT6010542811101000000123456"), Err(IbanError::Format));
        assert_eq!(check("IT60X05428A1101000000123456"), Err(IbanError::Format));
        assert_eq!(
            check("it60x0542811101000000123456"),
            Err(IbanError::Country)
        );
        assert_eq!(check("IT60 X054 2811 1010 0000 01"), Err(IbanError::Format));
    }
}
