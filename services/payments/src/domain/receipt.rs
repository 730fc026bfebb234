//! The receipt of a payment as a sealed document (DOMAIN.md "Payments": receipts; the idea of a
//! verifiable digital copy, CAD art. 23): compact JSON with a fixed key order, written once
//! when the receipt is recorded and stored as written, and its seal, the lowercase hex SHA-256
//! of the document's UTF-8 bytes. Anyone holding the document can recompute the seal
//! ([`verify`]); no re-encoding is ever needed, so the seal never depends on a JSON library.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::money;

/// The `kind` of every receipt document, so that a reader knows the layout.
pub const DOCUMENT_KIND: &str = "unione.payments.v1.Receipt";

/// What a sealed receipt says. The fields serialise in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptDocument {
    /// Always [`DOCUMENT_KIND`].
    pub kind: &'static str,
    /// The creditor comune's 11-digit fiscal code.
    pub creditor_fiscal_code: String,
    /// The creditor comune's name.
    pub creditor_name: String,
    /// The 18-digit notice number.
    pub notice_number: String,
    /// The 17-digit IUV.
    pub iuv: String,
    /// The PSP's receipt id.
    pub receipt_id: String,
    /// The PSP that took the payment.
    pub psp_id: String,
    /// The amount in euro cents.
    pub amount_cents: i64,
    /// The same amount in decimal euros (`1234.56`), for people.
    pub amount_euros: String,
    /// When the payer paid, RFC 3339 in UTC.
    pub payment_time: String,
    /// What the debt was for.
    pub description: String,
    /// The debtor's fiscal code (the citizen's own receipt).
    pub debtor_fiscal_code: String,
    /// When Unione recorded the receipt, RFC 3339 in UTC.
    pub recorded_at: String,
}

impl ReceiptDocument {
    /// The amount in decimal euros for `cents`.
    pub fn euros(cents: i64) -> String {
        money::format_euros(cents)
    }

    /// The document: compact JSON, keys in declaration order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings and integers serialises")
    }
}

/// The seal of `document`: lowercase hex SHA-256 of its UTF-8 bytes.
pub fn seal(document: &str) -> String {
    Sha256::digest(document.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True when `seal` is the seal of `document`.
pub fn verify(document: &str, seal_hex: &str) -> bool {
    seal(document) == seal_hex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> ReceiptDocument {
        ReceiptDocument {
            kind: DOCUMENT_KIND,
            creditor_fiscal_code: "00110270113".into(),
            creditor_name: "Sarzana".into(),
            notice_number: "301202300000000148".into(),
            iuv: "01202300000000148".into(),
            receipt_id: "r-1".into(),
            psp_id: "PSP1".into(),
            amount_cents: 11_550,
            amount_euros: ReceiptDocument::euros(11_550),
            payment_time: "2026-01-10T10:00:00.000000Z".into(),
            description: "TARI 2026".into(),
            debtor_fiscal_code: "RCCMNL83S18D969H".into(),
            recorded_at: "2026-01-10T10:00:01.000000Z".into(),
        }
    }

    /// The document is deterministic (fixed key order, compact) and its seal is the SHA-256 of
    /// exactly those bytes: one changed character breaks it.
    #[test]
    fn deterministic_and_verifiable() {
        let json = doc().to_json();
        assert_eq!(json, doc().to_json());
        assert!(
            json.starts_with(r#"{"kind":"unione.payments.v1.Receipt","creditor_fiscal_code":"#)
        );
        assert!(json.contains(r#""amount_cents":11550,"amount_euros":"115.50""#));
        let s = seal(&json);
        assert_eq!(s.len(), 64);
        assert!(verify(&json, &s));
        assert!(!verify(&json.replace("11550", "11551"), &s));
        // SHA-256 of the empty string, the standard test vector.
        assert_eq!(
            seal(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
