//! The protocol register (DOMAIN.md "Registry", "Protocol register": DPR 445/2000 artt. 53-57,
//! AgID guidelines 2021, DPCM 3/12/2013 art. 8), with no I/O.
//!
//! A registration is stored once, as registered, and never changed; what happens to it later
//! (a new classification or assignment, a corrected subject or correspondent, the annulment)
//! is an [`Event`] appended to its history, and the current values are folded from the
//! history ([`StoredRegistration::current`]). The daily register of a day is the canonical
//! JSON of that day's registrations and events ([`DailyContent`]), sealed with
//! `sha256(previous_seal || content)` ([`seal`]).
//!
//! Time: every instant is given by the caller (microseconds since the epoch); the Italian
//! calendar day and year come from [`italian_date`], which applies the Europe/Rome rule (CET,
//! UTC+1; CEST, UTC+2, from the last Sunday of March to the last Sunday of October at 01:00
//! UTC, the EU rule since 1996).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The general register, used when a request names none.
pub const DEFAULT_REGISTER: &str = "GEN";
/// The AOO (area organizzativa omogenea) code in the segnatura: one AOO per comune.
pub const AOO_CODE: &str = "AOO1";
/// Largest document or attachment, in bytes (10 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;
/// Most attachments per registration.
pub const MAX_ATTACHMENTS: usize = 50;
/// Most recipients per registration.
pub const MAX_RECIPIENTS: usize = 100;
/// Longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 1000;
/// Longest other text field (correspondent, office, act, reason, file name), in characters.
pub const MAX_TEXT_CHARS: usize = 500;

/// A rule of the protocol register broken by a request. Each variant has a stable reason
/// ([`ProtocolError::reason`]), names the field at fault ([`ProtocolError::field`]) and falls
/// in one [`ErrorClass`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A required field is empty.
    #[error("{field} is required")]
    Required {
        /// The field path.
        field: String,
    },
    /// A text field is longer than allowed.
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// The field path.
        field: String,
        /// The limit.
        max: usize,
    },
    /// A text field holds control characters.
    #[error("{field} must not contain control characters")]
    InvalidCharacters {
        /// The field path.
        field: String,
    },
    /// A document or attachment is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("{field} is larger than {MAX_DOCUMENT_BYTES} bytes")]
    DocumentTooLarge {
        /// The field path.
        field: String,
    },
    /// Too many attachments or recipients.
    #[error("{field} has more than {max} entries")]
    TooMany {
        /// The field path.
        field: String,
        /// The limit.
        max: usize,
    },
    /// A field that does not apply to the document's direction was given.
    #[error("{field} does not apply to a document of this direction")]
    NotApplicable {
        /// The field path.
        field: String,
    },
    /// An enum holds a value this version does not know.
    #[error("{field} has an unknown value {value}")]
    UnknownEnumValue {
        /// The field path.
        field: String,
        /// The value received.
        value: i32,
    },
    /// A register code is not 1 to 16 upper-case letters and digits.
    #[error("the register code must be 1 to 16 upper-case letters or digits")]
    InvalidRegister {
        /// The field path.
        field: String,
    },
    /// The update mask names a field that may not change.
    #[error("only classification and assignment may be updated; `{path}` is immutable")]
    FieldNotUpdatable {
        /// The path refused.
        path: String,
    },
    /// A correction gives the value the field already has.
    #[error("{field} already has this value")]
    Unchanged {
        /// The field path.
        field: String,
    },
    /// The etag is not the registration's current one (AIP-154).
    #[error("the registration changed since it was read (etag mismatch)")]
    EtagMismatch,
    /// The registration is annulled: it can no longer change.
    #[error("the registration is annulled")]
    Annulled,
    /// The day is already sealed in the daily register: no write may land on it.
    #[error("the daily register of this day is already sealed")]
    DaySealed,
    /// The day to seal is not over yet (Europe/Rome).
    #[error("the day is not over yet")]
    DayNotOver,
    /// The day to seal is not the one after the last sealed day.
    #[error("the previous day ({0}) must be sealed first")]
    PreviousDayNotSealed(NaiveDate),
    /// A later day is already sealed.
    #[error("a later day ({0}) is already sealed")]
    LaterDaySealed(NaiveDate),
}

/// How a [`ProtocolError`] is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Invalid input.
    Invalid,
    /// The record is not in a state that allows the request.
    FailedPrecondition,
    /// A concurrent change: read again and retry.
    Aborted,
}

impl ProtocolError {
    /// The stable UPPER_SNAKE_CASE reason of the `ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Required { .. } => "FIELD_REQUIRED",
            Self::TooLong { .. } => "FIELD_TOO_LONG",
            Self::InvalidCharacters { .. } => "INVALID_CHARACTERS",
            Self::DocumentTooLarge { .. } => "DOCUMENT_TOO_LARGE",
            Self::TooMany { .. } => "TOO_MANY_ENTRIES",
            Self::NotApplicable { .. } => "FIELD_NOT_APPLICABLE",
            Self::UnknownEnumValue { .. } => "INVALID_ENUM_VALUE",
            Self::InvalidRegister { .. } => "INVALID_REGISTER",
            Self::FieldNotUpdatable { .. } => "FIELD_NOT_UPDATABLE",
            Self::Unchanged { .. } => "VALUE_UNCHANGED",
            Self::EtagMismatch => "ETAG_MISMATCH",
            Self::Annulled => "REGISTRATION_ANNULLED",
            Self::DaySealed => "DAY_SEALED",
            Self::DayNotOver => "DAY_NOT_OVER",
            Self::PreviousDayNotSealed(_) => "PREVIOUS_DAY_NOT_SEALED",
            Self::LaterDaySealed(_) => "LATER_DAY_SEALED",
        }
    }

    /// The request field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Required { field }
            | Self::TooLong { field, .. }
            | Self::InvalidCharacters { field }
            | Self::DocumentTooLarge { field }
            | Self::TooMany { field, .. }
            | Self::NotApplicable { field }
            | Self::UnknownEnumValue { field, .. }
            | Self::InvalidRegister { field }
            | Self::Unchanged { field } => Some(field),
            Self::FieldNotUpdatable { .. } => Some("update_mask"),
            Self::EtagMismatch => Some("etag"),
            Self::Annulled | Self::DaySealed => None,
            Self::DayNotOver | Self::PreviousDayNotSealed(_) | Self::LaterDaySealed(_) => {
                Some("name")
            }
        }
    }

    /// How the error is reported.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::EtagMismatch => ErrorClass::Aborted,
            Self::Annulled
            | Self::DaySealed
            | Self::DayNotOver
            | Self::PreviousDayNotSealed(_)
            | Self::LaterDaySealed(_) => ErrorClass::FailedPrecondition,
            _ => ErrorClass::Invalid,
        }
    }
}

/// The direction of a registered document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received (in entrata): has a sender.
    Incoming,
    /// Sent (in uscita): has recipients.
    Outgoing,
    /// Between offices (interno): has recipients.
    Internal,
}

impl Direction {
    /// The stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Self::Incoming => "INCOMING",
            Self::Outgoing => "OUTGOING",
            Self::Internal => "INTERNAL",
        }
    }

    /// The direction of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "INCOMING" => Some(Self::Incoming),
            "OUTGOING" => Some(Self::Outgoing),
            "INTERNAL" => Some(Self::Internal),
            _ => None,
        }
    }
}

/// What an [`Event`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The classification changed.
    ClassificationChanged,
    /// The assignment changed.
    AssignmentChanged,
    /// The subject was annulled and entered again.
    SubjectCorrected,
    /// The sender was annulled and entered again.
    SenderCorrected,
    /// The recipients were annulled and entered again.
    RecipientsCorrected,
    /// The whole registration was annulled.
    Annulled,
}

impl EventKind {
    /// The stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Self::ClassificationChanged => "CLASSIFICATION_CHANGED",
            Self::AssignmentChanged => "ASSIGNMENT_CHANGED",
            Self::SubjectCorrected => "SUBJECT_CORRECTED",
            Self::SenderCorrected => "SENDER_CORRECTED",
            Self::RecipientsCorrected => "RECIPIENTS_CORRECTED",
            Self::Annulled => "ANNULLED",
        }
    }

    /// The kind of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        [
            Self::ClassificationChanged,
            Self::AssignmentChanged,
            Self::SubjectCorrected,
            Self::SenderCorrected,
            Self::RecipientsCorrected,
            Self::Annulled,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

/// A field CorrectField may correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrectableField {
    /// The subject.
    Subject,
    /// The sender (incoming documents).
    Sender,
    /// The recipients (outgoing and internal documents).
    Recipients,
}

/// A document or attachment as stored: its content is in the blob store under `sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRef {
    /// File name.
    pub file_name: String,
    /// Media type.
    pub media_type: String,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: i64,
}

/// A document as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentDraft {
    /// File name.
    pub file_name: String,
    /// Media type.
    pub media_type: String,
    /// Content.
    pub content: Vec<u8>,
}

/// A new registration as received, before any check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationDraft {
    /// Direction, if given.
    pub direction: Option<Direction>,
    /// Subject.
    pub subject: String,
    /// Sender.
    pub sender: String,
    /// Recipients.
    pub recipients: Vec<String>,
    /// Classification (titolario code).
    pub classification: String,
    /// Assigned office.
    pub assignment: String,
    /// The principal document, if given.
    pub document: Option<DocumentDraft>,
    /// Attachments.
    pub attachments: Vec<DocumentDraft>,
}

/// A checked new registration: what the storage layer numbers and stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegistration {
    /// Direction.
    pub direction: Direction,
    /// Subject, trimmed.
    pub subject: String,
    /// Sender, trimmed (empty unless incoming).
    pub sender: String,
    /// Recipients, trimmed (empty for incoming).
    pub recipients: Vec<String>,
    /// Classification, trimmed.
    pub classification: String,
    /// Assigned office, trimmed.
    pub assignment: String,
    /// The document first, then the attachments, each with its content.
    pub documents: Vec<(DocumentRef, Vec<u8>)>,
}

impl RegistrationDraft {
    /// Checks a new registration (DOMAIN.md "Protocol register"): direction given; subject,
    /// classification and assignment non-empty; a sender for incoming documents and only for
    /// them; at least one recipient for outgoing and internal ones and none for incoming; a
    /// document of 1 byte to [`MAX_DOCUMENT_BYTES`] and attachments of the same size; text
    /// trimmed, within its limit, without control characters.
    pub fn validate(self) -> Result<NewRegistration, ProtocolError> {
        const P: &str = "registration";
        let direction = self.direction.ok_or_else(|| required(P, "direction"))?;
        let subject = text(&format!("{P}.subject"), &self.subject, MAX_SUBJECT_CHARS)?;
        let (sender, recipients) = match direction {
            Direction::Incoming => {
                if !self.recipients.is_empty() {
                    return Err(ProtocolError::NotApplicable {
                        field: format!("{P}.recipients"),
                    });
                }
                (
                    text(&format!("{P}.sender"), &self.sender, MAX_TEXT_CHARS)?,
                    Vec::new(),
                )
            }
            Direction::Outgoing | Direction::Internal => {
                if !self.sender.trim().is_empty() {
                    return Err(ProtocolError::NotApplicable {
                        field: format!("{P}.sender"),
                    });
                }
                (
                    String::new(),
                    recipients(&format!("{P}.recipients"), &self.recipients)?,
                )
            }
        };
        let classification = text(
            &format!("{P}.classification"),
            &self.classification,
            MAX_TEXT_CHARS,
        )?;
        let assignment = text(&format!("{P}.assignment"), &self.assignment, MAX_TEXT_CHARS)?;
        let document = self.document.ok_or_else(|| required(P, "document"))?;
        if self.attachments.len() > MAX_ATTACHMENTS {
            return Err(ProtocolError::TooMany {
                field: format!("{P}.attachments"),
                max: MAX_ATTACHMENTS,
            });
        }
        let mut documents = vec![checked_document(&format!("{P}.document"), document)?];
        for (i, a) in self.attachments.into_iter().enumerate() {
            documents.push(checked_document(&format!("{P}.attachments[{i}]"), a)?);
        }
        Ok(NewRegistration {
            direction,
            subject,
            sender,
            recipients,
            classification,
            assignment,
            documents,
        })
    }
}

fn required(parent: &str, field: &str) -> ProtocolError {
    ProtocolError::Required {
        field: format!("{parent}.{field}"),
    }
}

/// A required free-text field: trimmed, non-empty, at most `max` characters, no control
/// characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, ProtocolError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ProtocolError::Required {
            field: field.to_owned(),
        });
    }
    if value.chars().count() > max {
        return Err(ProtocolError::TooLong {
            field: field.to_owned(),
            max,
        });
    }
    if value.chars().any(char::is_control) {
        return Err(ProtocolError::InvalidCharacters {
            field: field.to_owned(),
        });
    }
    Ok(value.to_owned())
}

/// A non-empty list of recipients, each a [`text`].
pub fn recipients(field: &str, values: &[String]) -> Result<Vec<String>, ProtocolError> {
    if values.is_empty() {
        return Err(ProtocolError::Required {
            field: field.to_owned(),
        });
    }
    if values.len() > MAX_RECIPIENTS {
        return Err(ProtocolError::TooMany {
            field: field.to_owned(),
            max: MAX_RECIPIENTS,
        });
    }
    values
        .iter()
        .enumerate()
        .map(|(i, v)| text(&format!("{field}[{i}]"), v, MAX_TEXT_CHARS))
        .collect()
}

fn checked_document(
    field: &str,
    draft: DocumentDraft,
) -> Result<(DocumentRef, Vec<u8>), ProtocolError> {
    let file_name = text(
        &format!("{field}.file_name"),
        &draft.file_name,
        MAX_TEXT_CHARS,
    )?;
    let media_type = text(
        &format!("{field}.media_type"),
        &draft.media_type,
        MAX_TEXT_CHARS,
    )?;
    if draft.content.is_empty() {
        return Err(ProtocolError::Required {
            field: format!("{field}.content"),
        });
    }
    if draft.content.len() > MAX_DOCUMENT_BYTES {
        return Err(ProtocolError::DocumentTooLarge {
            field: format!("{field}.content"),
        });
    }
    Ok((
        DocumentRef {
            file_name,
            media_type,
            sha256: sha256_hex(&draft.content),
            size_bytes: i64::try_from(draft.content.len()).expect("10 MiB fits i64"),
        },
        draft.content,
    ))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a register code: 1 to 16 upper-case ASCII letters or digits.
pub fn check_register(field: &str, code: &str) -> Result<(), ProtocolError> {
    if (1..=16).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(ProtocolError::InvalidRegister {
            field: field.to_owned(),
        })
    }
}

/// The protocol number as printed: at least 7 digits (DPR 445/2000 art. 57).
pub fn format_number(number: i64) -> String {
    format!("{number:07}")
}

/// The calendar day in Italy (Europe/Rome) at `micros` since the epoch.
pub fn italian_date(micros: i64) -> NaiveDate {
    unione_kit::italy::date_at(micros)
}

/// The first instant (microseconds since the epoch) after the Italian day `date`.
pub fn end_of_italian_day(date: NaiveDate) -> i64 {
    unione_kit::italy::end_of_day(date)
}

/// A registration as registered: never changed once stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrationRecord {
    /// The opaque id.
    pub id: String,
    /// The register code.
    pub register: String,
    /// The year of the number (Italian calendar year of `registered_at`).
    pub year: i64,
    /// The number, from 1 each year.
    pub number: i64,
    /// When, microseconds since the epoch.
    pub registered_at: i64,
    /// The Italian day of `registered_at`.
    #[serde(serialize_with = "ser_date")]
    pub registration_date: NaiveDate,
    /// Direction.
    #[serde(serialize_with = "ser_direction")]
    pub direction: Direction,
    /// Subject as registered.
    pub subject: String,
    /// Sender as registered.
    pub sender: String,
    /// Recipients as registered.
    pub recipients: Vec<String>,
    /// Classification as registered.
    pub classification: String,
    /// Assignment as registered.
    pub assignment: String,
    /// The document, then the attachments.
    pub documents: Vec<DocumentRef>,
    /// The operator who registered it.
    pub operator: String,
}

fn ser_date<S: serde::Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&date.format("%Y-%m-%d").to_string())
}

fn ser_direction<S: serde::Serializer>(d: &Direction, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.code())
}

fn ser_kind<S: serde::Serializer>(k: &EventKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.code())
}

/// One entry of a registration's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Position in the registration's history, from 1.
    pub seq: i64,
    /// When, microseconds since the epoch.
    pub at: i64,
    /// What happened.
    #[serde(serialize_with = "ser_kind")]
    pub kind: EventKind,
    /// The value before (recipients one per line).
    pub old_value: String,
    /// The value after (recipients one per line).
    pub new_value: String,
    /// Who.
    pub operator: String,
    /// Why (corrections and annulments).
    pub reason: String,
    /// The authorising act (corrections and annulments).
    pub authorising_act: String,
}

/// The current values of a registration, folded from its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// Subject.
    pub subject: String,
    /// Sender.
    pub sender: String,
    /// Recipients.
    pub recipients: Vec<String>,
    /// Classification.
    pub classification: String,
    /// Assignment.
    pub assignment: String,
    /// The annulment, if annulled.
    pub annulment: Option<Event>,
}

/// A registration and its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRegistration {
    /// The record as registered.
    pub record: RegistrationRecord,
    /// Its history, by `seq`.
    pub events: Vec<Event>,
}

/// Recipients as one value of the history: one per line.
pub fn join_recipients(recipients: &[String]) -> String {
    recipients.join("\n")
}

fn split_recipients(value: &str) -> Vec<String> {
    value.lines().map(str::to_owned).collect()
}

/// A change about to be appended, before its time and sequence are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happens.
    pub kind: EventKind,
    /// The value before.
    pub old_value: String,
    /// The value after.
    pub new_value: String,
    /// Why.
    pub reason: String,
    /// The authorising act.
    pub authorising_act: String,
}

impl StoredRegistration {
    /// 1 when registered, one more per history entry (the etag derives from it).
    pub fn revision(&self) -> i64 {
        1 + i64::try_from(self.events.len()).expect("a history fits i64")
    }

    /// The current values: the registered ones with every history entry applied in order.
    pub fn current(&self) -> Current {
        let r = &self.record;
        let mut current = Current {
            subject: r.subject.clone(),
            sender: r.sender.clone(),
            recipients: r.recipients.clone(),
            classification: r.classification.clone(),
            assignment: r.assignment.clone(),
            annulment: None,
        };
        for e in &self.events {
            match e.kind {
                EventKind::ClassificationChanged => current.classification = e.new_value.clone(),
                EventKind::AssignmentChanged => current.assignment = e.new_value.clone(),
                EventKind::SubjectCorrected => current.subject = e.new_value.clone(),
                EventKind::SenderCorrected => current.sender = e.new_value.clone(),
                EventKind::RecipientsCorrected => {
                    current.recipients = split_recipients(&e.new_value);
                }
                EventKind::Annulled => current.annulment = Some(e.clone()),
            }
        }
        current
    }

    fn check_open(&self) -> Result<Current, ProtocolError> {
        let current = self.current();
        if current.annulment.is_some() {
            return Err(ProtocolError::Annulled);
        }
        Ok(current)
    }

    /// The changes of an update (DOMAIN.md "Protocol register": only the classification and
    /// the assignment may change, each change historised). `None` leaves a field as it is; a
    /// value equal to the current one adds nothing.
    pub fn plan_update(
        &self,
        classification: Option<&str>,
        assignment: Option<&str>,
    ) -> Result<Vec<Change>, ProtocolError> {
        let current = self.check_open()?;
        let mut changes = Vec::new();
        let fields = [
            (
                classification,
                "registration.classification",
                current.classification,
                EventKind::ClassificationChanged,
            ),
            (
                assignment,
                "registration.assignment",
                current.assignment,
                EventKind::AssignmentChanged,
            ),
        ];
        for (given, field, old, kind) in fields {
            if let Some(given) = given {
                let new = text(field, given, MAX_TEXT_CHARS)?;
                if new != old {
                    changes.push(Change {
                        kind,
                        old_value: old,
                        new_value: new,
                        reason: String::new(),
                        authorising_act: String::new(),
                    });
                }
            }
        }
        Ok(changes)
    }

    /// The correction of the subject or a correspondent (DPCM 3/12/2013 art. 8): the field is
    /// annulled and entered again, with a reason and an authorising act; the old value stays
    /// in the history. The sender applies to incoming documents only, the recipients to the
    /// others.
    pub fn plan_correction(
        &self,
        field: CorrectableField,
        new_value: &str,
        new_recipients: &[String],
        reason: &str,
        act: &str,
    ) -> Result<Change, ProtocolError> {
        let reason = text("reason", reason, MAX_TEXT_CHARS)?;
        let authorising_act = text("authorising_act", act, MAX_TEXT_CHARS)?;
        let current = self.check_open()?;
        let incoming = self.record.direction == Direction::Incoming;
        let (kind, old_value, new_value) = match field {
            CorrectableField::Subject => (
                EventKind::SubjectCorrected,
                current.subject,
                text("new_value", new_value, MAX_SUBJECT_CHARS)?,
            ),
            CorrectableField::Sender if incoming => (
                EventKind::SenderCorrected,
                current.sender,
                text("new_value", new_value, MAX_TEXT_CHARS)?,
            ),
            CorrectableField::Recipients if !incoming => (
                EventKind::RecipientsCorrected,
                join_recipients(&current.recipients),
                join_recipients(&recipients("new_recipients", new_recipients)?),
            ),
            CorrectableField::Sender | CorrectableField::Recipients => {
                return Err(ProtocolError::NotApplicable {
                    field: "field".to_owned(),
                });
            }
        };
        if old_value == new_value {
            return Err(ProtocolError::Unchanged {
                field: if field == CorrectableField::Recipients {
                    "new_recipients"
                } else {
                    "new_value"
                }
                .to_owned(),
            });
        }
        Ok(Change {
            kind,
            old_value,
            new_value,
            reason,
            authorising_act,
        })
    }

    /// The annulment of the whole registration (DOMAIN.md "Protocol register": annulment,
    /// never deletion), with a reason and an authorising act.
    pub fn plan_annulment(&self, reason: &str, act: &str) -> Result<Change, ProtocolError> {
        let reason = text("reason", reason, MAX_TEXT_CHARS)?;
        let authorising_act = text("authorising_act", act, MAX_TEXT_CHARS)?;
        self.check_open()?;
        Ok(Change {
            kind: EventKind::Annulled,
            old_value: String::new(),
            new_value: String::new(),
            reason,
            authorising_act,
        })
    }
}

/// One event of a day, with the registration it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayEvent {
    /// The registration's id.
    pub registration_id: String,
    /// The registration's year.
    pub year: i64,
    /// The registration's number.
    pub number: i64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// The content of a daily register: serialized as canonical JSON ([`DailyContent::to_json`])
/// with fields in this order, registrations by number and events by time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailyContent {
    /// The comune's ISTAT code.
    pub comune: String,
    /// The register code.
    pub register: String,
    /// The day, `YYYY-MM-DD`.
    #[serde(serialize_with = "ser_date")]
    pub date: NaiveDate,
    /// That day's registrations, as registered.
    pub registrations: Vec<RegistrationRecord>,
    /// That day's changes, corrections and annulments.
    pub events: Vec<DayEvent>,
}

impl DailyContent {
    /// The canonical JSON: compact, fields in declaration order, deterministic.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the daily register is plain serializable data")
    }
}

/// The seal of a day: `sha256(previous_seal || content)`, lower-case hex, where
/// `previous_seal` is the previous sealed day's seal as hex text (empty for the first day).
pub fn seal(previous_seal: &str, content: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(previous_seal.as_bytes());
    hasher.update(content);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks that `day` may be sealed at `now` (DOMAIN.md "Protocol register", the daily
/// register): the day is over in Italy, and it is the day after `last_sealed` (any day when
/// nothing is sealed yet), so the chain has no holes.
pub fn check_sealable(
    day: NaiveDate,
    now: i64,
    last_sealed: Option<NaiveDate>,
) -> Result<(), ProtocolError> {
    if end_of_italian_day(day) > now {
        return Err(ProtocolError::DayNotOver);
    }
    match last_sealed {
        None => Ok(()),
        Some(last) if last > day => Err(ProtocolError::LaterDaySealed(last)),
        Some(last) if last.succ_opt() == Some(day) => Ok(()),
        Some(last) => Err(ProtocolError::PreviousDayNotSealed(
            day.pred_opt().unwrap_or(last),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, 0))
            .expect("a real instant")
            .and_utc()
            .timestamp_micros()
    }

    /// DOMAIN.md "Protocol register": at least 7 digits.
    #[test]
    fn numbers_have_at_least_seven_digits() {
        assert_eq!(format_number(42), "0000042");
        assert_eq!(format_number(12_345_678), "12345678");
    }

    /// The Italian day and year follow Europe/Rome: CET in winter, CEST in summer.
    #[test]
    fn italian_days_follow_rome_time() {
        // 31 Dec 23:30 UTC is already 1 January in Rome (CET, UTC+1).
        assert_eq!(
            italian_date(micros(2025, 12, 31, 23, 30)),
            NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")
        );
        assert_eq!(
            italian_date(micros(2025, 12, 31, 22, 59)),
            NaiveDate::from_ymd_opt(2025, 12, 31).expect("date")
        );
        // 15 July 22:30 UTC is 16 July in Rome (CEST, UTC+2).
        assert_eq!(
            italian_date(micros(2026, 7, 15, 22, 30)),
            NaiveDate::from_ymd_opt(2026, 7, 16).expect("date")
        );
        let day = NaiveDate::from_ymd_opt(2026, 7, 15).expect("date");
        assert_eq!(end_of_italian_day(day), micros(2026, 7, 15, 22, 0));
        let day = NaiveDate::from_ymd_opt(2026, 1, 15).expect("date");
        assert_eq!(end_of_italian_day(day), micros(2026, 1, 15, 23, 0));
    }

    #[test]
    fn seals_chain_without_holes() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
        let after = micros(2026, 3, 3, 0, 0);
        assert_eq!(check_sealable(day, after, None), Ok(()));
        assert_eq!(
            check_sealable(day, micros(2026, 3, 2, 12, 0), None),
            Err(ProtocolError::DayNotOver)
        );
        let prev = day.pred_opt().expect("date");
        assert_eq!(check_sealable(day, after, Some(prev)), Ok(()));
        assert!(matches!(
            check_sealable(day, after, Some(prev.pred_opt().expect("date"))),
            Err(ProtocolError::PreviousDayNotSealed(_))
        ));
        assert_ne!(seal("", b"x"), seal("a", b"x"));
    }
}
