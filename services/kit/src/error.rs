//! The error model (AIP-193): every error leaves a server as a `google.rpc.Status` with one
//! `ErrorInfo` (a stable UPPER_SNAKE_CASE reason, the domain `unione.it`, and the field at
//! fault in its metadata) and, for invalid input, a `BadRequest` naming the field.
//!
//! Each service's domain has its own error enum; it converts into [`ApiError`], and
//! [`ApiError`] converts into [`tonic::Status`] here, once for the whole project.

use std::collections::HashMap;

use tonic::Code;
use tonic_types::{ErrorDetails, ErrorInfo, FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of every Unione error.
pub const ERROR_DOMAIN: &str = "unione.it";

/// An error as the API reports it: a gRPC code, a stable reason, and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?} {reason}: {message}")]
pub struct ApiError {
    /// The gRPC status code.
    pub code: Code,
    /// A stable UPPER_SNAKE_CASE reason, e.g. `INVALID_CODICE_FISCALE`.
    pub reason: &'static str,
    /// The request field at fault, as a path (`resident.codice_fiscale`), if any.
    pub field: Option<String>,
    /// A human-readable explanation (English); never personal data.
    pub message: String,
    /// Further metadata for the `ErrorInfo`.
    pub metadata: Vec<(String, String)>,
}

impl ApiError {
    /// An error with a code, a reason and a message.
    pub fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            field: None,
            message: message.into(),
            metadata: Vec::new(),
        }
    }

    /// INVALID_ARGUMENT for one field.
    pub fn invalid(
        field: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Code::InvalidArgument, reason, message).with_field(field)
    }

    /// INVALID_ARGUMENT because a required field is empty (reason `FIELD_REQUIRED`).
    pub fn required(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is required");
        Self::invalid(field, "FIELD_REQUIRED", message)
    }

    /// NOT_FOUND for a resource name (reason `RESOURCE_NOT_FOUND`).
    pub fn not_found(field: impl Into<String>, name: &str) -> Self {
        Self::new(
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            format!("{name} does not exist"),
        )
        .with_field(field)
        .with_metadata("resource", name)
    }

    /// FAILED_PRECONDITION with a reason.
    pub fn failed_precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, reason, message)
    }

    /// INTERNAL; the cause is logged, never sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            Code::Internal,
            "INTERNAL",
            "internal error; it has been logged",
        )
    }

    /// UNAVAILABLE, for a dependency that cannot be reached; retrying may succeed.
    pub fn unavailable(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, reason, message)
    }

    /// Names the field at fault.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds an `ErrorInfo` metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }
}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        let mut metadata: HashMap<String, String> = err.metadata.into_iter().collect();
        if let Some(field) = &err.field {
            metadata.insert("field".to_owned(), field.clone());
        }
        let mut details =
            ErrorDetails::with_error_info(err.reason.to_owned(), ERROR_DOMAIN.to_owned(), metadata);
        if let (Code::InvalidArgument, Some(field)) = (err.code, &err.field) {
            details.set_bad_request(vec![FieldViolation::new(
                field.clone(),
                err.message.clone(),
            )]);
        }
        tonic::Status::with_error_details(err.code, err.message, details)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut => {
                Self::unavailable("STORAGE_BUSY", "storage is busy, retry later")
            }
            _ => Self::internal(&err),
        }
    }
}

/// Reads the `ErrorInfo` of a status (for clients and tests).
pub fn error_info(status: &tonic::Status) -> Option<ErrorInfo> {
    status.get_details_error_info()
}

/// Reads the `ErrorInfo` reason and field of a status, for assertions.
pub fn reason_and_field(status: &tonic::Status) -> (String, Option<String>) {
    match error_info(status) {
        Some(info) => (info.reason, info.metadata.get("field").cloned()),
        None => (String::new(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_error_info_and_bad_request() {
        let status: tonic::Status = ApiError::invalid(
            "resident.codice_fiscale",
            "INVALID_CODICE_FISCALE",
            "bad check letter",
        )
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = error_info(&status).expect("ErrorInfo attached");
        assert_eq!(info.reason, "INVALID_CODICE_FISCALE");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(
            info.metadata.get("field").map(String::as_str),
            Some("resident.codice_fiscale")
        );
        let bad = status
            .get_details_bad_request()
            .expect("BadRequest attached");
        assert_eq!(bad.field_violations[0].field, "resident.codice_fiscale");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status: tonic::Status = ApiError::internal(&"disk on fire at /secret/path").into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("/secret/path"));
    }
}
