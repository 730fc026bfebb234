//! A resident record (DPR 223/1989, the individual record of the anagrafe) and the rules a new
//! one must satisfy before it is stored.
//!
//! The handlers turn the wire message into a [`ResidentDraft`] (raw values, nothing checked);
//! [`ResidentDraft::validate`] checks every field and gives a [`Resident`], the only form the
//! storage layer accepts for a new record.

use chrono::NaiveDate;

use super::RegistryError;
use super::codice_fiscale;

/// Longest given or family name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest street name, in characters.
pub const MAX_STREET_CHARS: usize = 100;
/// Longest house number (with suffix), in characters.
pub const MAX_HOUSE_NUMBER_CHARS: usize = 20;
/// Longest locality (frazione) name, in characters.
pub const MAX_LOCALITY_CHARS: usize = 100;

/// Sex as recorded in the civil status register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// Male.
    Male,
    /// Female.
    Female,
}

impl Sex {
    /// The stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Self::Male => "MALE",
            Self::Female => "FEMALE",
        }
    }

    /// The sex of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "MALE" => Some(Self::Male),
            "FEMALE" => Some(Self::Female),
            _ => None,
        }
    }

    /// True for [`Sex::Female`] (the codice fiscale adds 40 to the day).
    pub fn is_female(self) -> bool {
        self == Self::Female
    }
}

/// How a person came to be resident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationReason {
    /// Born in the comune.
    Birth,
    /// Moved from another Italian comune.
    ImmigrationFromComune,
    /// Moved from abroad.
    ImmigrationFromAbroad,
    /// Recorded again after having been struck off as untraceable.
    Reinstatement,
}

impl RegistrationReason {
    /// The stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Self::Birth => "BIRTH",
            Self::ImmigrationFromComune => "IMMIGRATION_FROM_COMUNE",
            Self::ImmigrationFromAbroad => "IMMIGRATION_FROM_ABROAD",
            Self::Reinstatement => "REINSTATEMENT",
        }
    }

    /// The reason of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "BIRTH" => Some(Self::Birth),
            "IMMIGRATION_FROM_COMUNE" => Some(Self::ImmigrationFromComune),
            "IMMIGRATION_FROM_ABROAD" => Some(Self::ImmigrationFromAbroad),
            "REINSTATEMENT" => Some(Self::Reinstatement),
            _ => None,
        }
    }
}

/// An address inside the comune.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// Street name, e.g. `Via Mazzini`.
    pub street: String,
    /// House number with any suffix, e.g. `12/A`.
    pub house_number: String,
    /// Five-digit postal code (CAP).
    pub postal_code: String,
    /// Frazione or locality; empty when none.
    pub locality: String,
}

/// A resident's data, checked by [`ResidentDraft::validate`] (or read back from storage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resident {
    /// The codice fiscale, upper case.
    pub codice_fiscale: String,
    /// Given name(s), trimmed.
    pub given_name: String,
    /// Family name(s), trimmed.
    pub family_name: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Cadastral code of the place of birth (letter and three digits).
    pub birth_place_code: String,
    /// Sex.
    pub sex: Sex,
    /// Citizenship, ISO 3166-1 alpha-2.
    pub citizenship: String,
    /// Address of residence.
    pub address: Address,
    /// Effective date of the registration (the declaration date).
    pub registration_date: NaiveDate,
    /// Why the person was registered.
    pub registration_reason: RegistrationReason,
}

impl Resident {
    /// The key residents are listed by: [`sort_key`] of the family name, then of the given
    /// name (the record's id breaks ties).
    pub fn sort_key(&self) -> (String, String) {
        (sort_key(&self.family_name), sort_key(&self.given_name))
    }
}

/// A calendar date as given on the wire: zero for a part not given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CivilDate {
    /// Year, 1-9999.
    pub year: i32,
    /// Month, 1-12.
    pub month: i32,
    /// Day, 1-31.
    pub day: i32,
}

/// A new resident as received, before any check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidentDraft {
    /// The codice fiscale as typed.
    pub codice_fiscale: String,
    /// Given name(s).
    pub given_name: String,
    /// Family name(s).
    pub family_name: String,
    /// Date of birth, if given.
    pub birth_date: Option<CivilDate>,
    /// Place of birth code.
    pub birth_place_code: String,
    /// Sex, if given.
    pub sex: Option<Sex>,
    /// Citizenship.
    pub citizenship: String,
    /// Address, if given.
    pub address: Option<Address>,
    /// Registration date, if given.
    pub registration_date: Option<CivilDate>,
    /// Registration reason, if given.
    pub registration_reason: Option<RegistrationReason>,
}

impl ResidentDraft {
    /// Checks every field of a new resident and returns it normalised (names trimmed, the
    /// codice fiscale upper-cased), or the first rule it breaks, field by field in the order
    /// of the contract, then the rules across fields:
    ///
    /// - names non-empty and at most [`MAX_NAME_CHARS`], without control characters;
    /// - dates complete and real; the birth date not after `today` nor after the registration
    ///   date;
    /// - the codice fiscale valid (DOMAIN.md "Check digits") and agreeing with the birth date
    ///   and sex;
    /// - the place of birth a letter and three digits; the citizenship two upper-case letters
    ///   (ISO 3166-1 alpha-2); the CAP five digits; sex and reason given.
    ///
    /// `today` is the current date in Italy; the caller reads the clock.
    pub fn validate(self, today: NaiveDate) -> Result<Resident, RegistryError> {
        const CF: &str = "resident.codice_fiscale";
        let codice_fiscale = codice_fiscale::normalize(&self.codice_fiscale);
        if codice_fiscale.is_empty() {
            return Err(RegistryError::Required { field: CF });
        }
        let decoded = codice_fiscale::validate(&codice_fiscale)?;
        let given_name = text("resident.given_name", &self.given_name, MAX_NAME_CHARS)?;
        let family_name = text("resident.family_name", &self.family_name, MAX_NAME_CHARS)?;
        let birth_date = date("resident.birth_date", self.birth_date)?;
        if self.birth_place_code.is_empty() {
            return Err(RegistryError::Required {
                field: "resident.birth_place_code",
            });
        }
        if !is_place_code(&self.birth_place_code) {
            return Err(RegistryError::InvalidPlaceCode);
        }
        let sex = self.sex.ok_or(RegistryError::Required {
            field: "resident.sex",
        })?;
        if self.citizenship.is_empty() {
            return Err(RegistryError::Required {
                field: "resident.citizenship",
            });
        }
        if !(self.citizenship.len() == 2
            && self.citizenship.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(RegistryError::InvalidCitizenship);
        }
        let address = address(self.address)?;
        let registration_date = date("resident.registration_date", self.registration_date)?;
        let registration_reason = self.registration_reason.ok_or(RegistryError::Required {
            field: "resident.registration_reason",
        })?;

        if birth_date > today {
            return Err(RegistryError::BirthDateInFuture);
        }
        if registration_date < birth_date {
            return Err(RegistryError::RegistrationBeforeBirth);
        }
        decoded
            .check_consistency(birth_date, sex.is_female())
            .map_err(RegistryError::CodiceFiscaleMismatch)?;

        Ok(Resident {
            codice_fiscale,
            given_name,
            family_name,
            birth_date,
            birth_place_code: self.birth_place_code,
            sex,
            citizenship: self.citizenship,
            address,
            registration_date,
            registration_reason,
        })
    }
}

/// The key a name sorts by: upper case, accented Latin letters as their base letter
/// (`D'Angelo` sorts as `D'ANGELO`, `Ànna` beside `Anna`). Compared byte by byte.
pub fn sort_key(name: &str) -> String {
    name.chars()
        .flat_map(|c| match codice_fiscale::fold_letter(c) {
            Some(base) => vec![base],
            None => c.to_uppercase().collect(),
        })
        .collect()
}

/// True for a place code: an upper-case letter and three digits (`I449`, `Z404`).
pub fn is_place_code(code: &str) -> bool {
    let bytes = code.as_bytes();
    bytes.len() == 4 && bytes[0].is_ascii_uppercase() && bytes[1..].iter().all(u8::is_ascii_digit)
}

/// True for a CAP: five digits.
pub fn is_postal_code(code: &str) -> bool {
    code.len() == 5 && code.bytes().all(|b| b.is_ascii_digit())
}

/// A required address of a new resident, checked (fields named `resident.address.*`).
pub(crate) fn address(given: Option<Address>) -> Result<Address, RegistryError> {
    let given = given.ok_or(RegistryError::Required {
        field: "resident.address",
    })?;
    let street = text("resident.address.street", &given.street, MAX_STREET_CHARS)?;
    let house_number = text(
        "resident.address.house_number",
        &given.house_number,
        MAX_HOUSE_NUMBER_CHARS,
    )?;
    if given.postal_code.is_empty() {
        return Err(RegistryError::Required {
            field: "resident.address.postal_code",
        });
    }
    if !is_postal_code(&given.postal_code) {
        return Err(RegistryError::InvalidPostalCode);
    }
    let locality = given.locality.trim();
    let locality = if locality.is_empty() {
        String::new()
    } else {
        text("resident.address.locality", locality, MAX_LOCALITY_CHARS)?
    };
    Ok(Address {
        street,
        house_number,
        postal_code: given.postal_code,
        locality,
    })
}

/// A required free-text field: trimmed, non-empty, at most `max` characters, no control
/// characters.
fn text(field: &'static str, value: &str, max: usize) -> Result<String, RegistryError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(RegistryError::Required { field });
    }
    if value.chars().count() > max {
        return Err(RegistryError::TooLong { field, max });
    }
    if value.chars().any(char::is_control) {
        return Err(RegistryError::InvalidCharacters { field });
    }
    Ok(value.to_owned())
}

/// A required full date: missing (or all zero) is `FIELD_REQUIRED`, a partial or impossible
/// date (30 February) is `INVALID_DATE`.
pub(crate) fn date(
    field: &'static str,
    given: Option<CivilDate>,
) -> Result<NaiveDate, RegistryError> {
    let given = match given {
        None
        | Some(CivilDate {
            year: 0,
            month: 0,
            day: 0,
        }) => return Err(RegistryError::Required { field }),
        Some(given) => given,
    };
    let (Ok(month), Ok(day)) = (u32::try_from(given.month), u32::try_from(given.day)) else {
        return Err(RegistryError::InvalidDate { field });
    };
    if !(1..=9999).contains(&given.year) {
        return Err(RegistryError::InvalidDate { field });
    }
    NaiveDate::from_ymd_opt(given.year, month, day).ok_or(RegistryError::InvalidDate { field })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn civil(year: i32, month: i32, day: i32) -> Option<CivilDate> {
        Some(CivilDate { year, month, day })
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).expect("a real date")
    }

    /// Mario Rossi, born in Rome on 1 January 1980, resident in Sarzana.
    fn rossi() -> ResidentDraft {
        ResidentDraft {
            codice_fiscale: "RSSMRA80A01H501U".into(),
            given_name: "Mario".into(),
            family_name: "Rossi".into(),
            birth_date: civil(1980, 1, 1),
            birth_place_code: "H501".into(),
            sex: Some(Sex::Male),
            citizenship: "IT".into(),
            address: Some(Address {
                street: "Via Mazzini".into(),
                house_number: "12/A".into(),
                postal_code: "19038".into(),
                locality: String::new(),
            }),
            registration_date: civil(2010, 6, 15),
            registration_reason: Some(RegistrationReason::ImmigrationFromComune),
        }
    }

    fn refused(draft: ResidentDraft) -> (&'static str, &'static str) {
        let err = draft.validate(today()).expect_err("refused");
        (err.reason(), err.field())
    }

    #[test]
    fn a_complete_resident_is_accepted_and_normalised() {
        let mut draft = rossi();
        draft.codice_fiscale = " rssmra80a01h501u ".into();
        draft.given_name = "  Mario ".into();
        let resident = draft.validate(today()).expect("valid");
        assert_eq!(resident.codice_fiscale, "RSSMRA80A01H501U");
        assert_eq!(resident.given_name, "Mario");
        assert_eq!(
            resident.birth_date,
            NaiveDate::from_ymd_opt(1980, 1, 1).expect("date")
        );
    }

    /// DOMAIN.md "Check digits": a code with a wrong check letter is refused on its field.
    #[test]
    fn an_invalid_codice_fiscale_is_refused() {
        let mut draft = rossi();
        draft.codice_fiscale = "RSSMRA80A01H501A".into();
        assert_eq!(
            refused(draft),
            ("INVALID_CODICE_FISCALE", "resident.codice_fiscale")
        );
        let mut draft = rossi();
        draft.codice_fiscale = String::new();
        assert_eq!(
            refused(draft),
            ("FIELD_REQUIRED", "resident.codice_fiscale")
        );
    }

    /// DOMAIN.md "Check digits": the code encodes birth date and sex (women + 40); a valid
    /// code that disagrees with them is refused.
    #[test]
    fn a_codice_fiscale_that_disagrees_with_the_birth_data_is_refused() {
        let mut draft = rossi();
        draft.birth_date = civil(1980, 1, 2);
        assert_eq!(
            refused(draft),
            ("CODICE_FISCALE_MISMATCH", "resident.codice_fiscale")
        );
        let mut draft = rossi();
        draft.sex = Some(Sex::Female);
        assert_eq!(
            refused(draft),
            ("CODICE_FISCALE_MISMATCH", "resident.codice_fiscale")
        );
    }

    #[test]
    fn dates_must_be_real_and_in_order() {
        let mut draft = rossi();
        draft.birth_date = civil(1980, 2, 30);
        assert_eq!(refused(draft), ("INVALID_DATE", "resident.birth_date"));
        let mut draft = rossi();
        draft.birth_date = civil(1980, 0, 1);
        assert_eq!(refused(draft), ("INVALID_DATE", "resident.birth_date"));
        let mut draft = rossi();
        draft.birth_date = None;
        assert_eq!(refused(draft), ("FIELD_REQUIRED", "resident.birth_date"));
        let mut draft = rossi();
        draft.registration_date = civil(0, 0, 0);
        assert_eq!(
            refused(draft),
            ("FIELD_REQUIRED", "resident.registration_date")
        );
        let mut draft = rossi();
        draft.registration_date = civil(1979, 12, 31);
        assert_eq!(
            refused(draft),
            ("INVALID_DATE", "resident.registration_date")
        );
        // Born tomorrow: a future birth date, whatever the code says.
        let mut draft = rossi();
        draft.codice_fiscale = codice_fiscale::compute(
            "Rossi",
            "Mario",
            today().succ_opt().expect("tomorrow"),
            false,
            "H501",
        );
        draft.birth_date = civil(2026, 11, 24);
        assert_eq!(refused(draft), ("INVALID_DATE", "resident.birth_date"));
        // Born and registered today is fine.
        let mut draft = rossi();
        draft.codice_fiscale = codice_fiscale::compute("Rossi", "Mario", today(), false, "H501");
        draft.birth_date = civil(2026, 11, 23);
        draft.registration_date = civil(2026, 11, 23);
        draft.registration_reason = Some(RegistrationReason::Birth);
        assert!(draft.validate(today()).is_ok());
    }

    #[test]
    fn codes_have_their_shapes() {
        for (bad, expected) in [
            ("1950", false),
            ("h501", false),
            ("H50", false),
            ("H501", true),
        ] {
            assert_eq!(is_place_code(bad), expected, "{bad}");
        }
        let mut draft = rossi();
        draft.birth_place_code = "h501".into();
        assert_eq!(
            refused(draft),
            ("INVALID_PLACE_CODE", "resident.birth_place_code")
        );
        for bad in ["it", "ITA", "I", "1T"] {
            let mut draft = rossi();
            draft.citizenship = bad.into();
            assert_eq!(
                refused(draft),
                ("INVALID_CITIZENSHIP", "resident.citizenship"),
                "{bad}"
            );
        }
        for bad in ["1903", "190388", "19O38", " 1903"] {
            let mut draft = rossi();
            if let Some(a) = draft.address.as_mut() {
                a.postal_code = bad.into();
            }
            assert_eq!(
                refused(draft),
                ("INVALID_POSTAL_CODE", "resident.address.postal_code"),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_required_bounded_and_printable() {
        let mut draft = rossi();
        draft.family_name = "   ".into();
        assert_eq!(refused(draft), ("FIELD_REQUIRED", "resident.family_name"));
        let mut draft = rossi();
        draft.given_name = "a".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(refused(draft), ("FIELD_TOO_LONG", "resident.given_name"));
        // 100 characters, multi-byte ones counted as one.
        let mut draft = rossi();
        draft.given_name = "è".repeat(MAX_NAME_CHARS);
        assert!(draft.validate(today()).is_ok());
        let mut draft = rossi();
        draft.given_name = "Ma\u{7}rio".into();
        assert_eq!(
            refused(draft),
            ("INVALID_CHARACTERS", "resident.given_name")
        );
    }

    #[test]
    fn enums_and_address_are_required() {
        let mut draft = rossi();
        draft.sex = None;
        assert_eq!(refused(draft), ("FIELD_REQUIRED", "resident.sex"));
        let mut draft = rossi();
        draft.registration_reason = None;
        assert_eq!(
            refused(draft),
            ("FIELD_REQUIRED", "resident.registration_reason")
        );
        let mut draft = rossi();
        draft.address = None;
        assert_eq!(refused(draft), ("FIELD_REQUIRED", "resident.address"));
        let mut draft = rossi();
        if let Some(a) = draft.address.as_mut() {
            a.street.clear();
        }
        assert_eq!(
            refused(draft),
            ("FIELD_REQUIRED", "resident.address.street")
        );
    }

    #[test]
    fn names_sort_without_case_or_accents() {
        assert_eq!(sort_key("d'Àngelo"), "D'ANGELO");
        assert_eq!(sort_key("Ànna"), sort_key("anna"));
        assert!(sort_key("de Luca") < sort_key("Esposito"));
    }
}
