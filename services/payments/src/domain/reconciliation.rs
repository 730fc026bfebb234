//! Reconciliation flows (flussi di rendicontazione, DOMAIN.md "Payments"): a PSP reports to a
//! creditor which transfers of which paid notices it settled to the creditor's accounts.
//!
//! A flow has a header (flow id, date, PSP, settlement reference, creditor), totals (count,
//! amount = sum of the lines) and lines (IUV, receipt id, transfer index 1-5, amount, outcome:
//! 0 paid, 3 revoked, 4 paid in stand-in, 8 stand-in without receipt, 9 paid without a
//! payment request). [`Flow::validate`] checks the input and the totals; [`reconcile`]
//! matches each line to its receipt and transfer (flow line -> transfer REPORTED) and names
//! the lines it cannot reconcile ([`ExceptionKind`]).
//!
//! Both are independent of the order of the lines: the lines are kept in a canonical order
//! (IUV, transfer index, receipt id, outcome, amount), matched in that order, and the
//! fingerprint that tells "the same flow again" apart from "another flow under the same id"
//! is computed over it.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::error::DomainError;
use super::position::{DateParts, civil_date};
use super::{fiscal, money};

/// The request field that holds a flow.
const ROOT: &str = "flow";
/// Longest flow id, PSP id, receipt id, settlement reference and IUV.
const MAX_ID_LEN: usize = 64;

/// The outcome of a line (pagoPA codice esito).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// 0: paid.
    Paid,
    /// 3: revoked.
    Revoked,
    /// 4: paid in stand-in.
    PaidStandIn,
    /// 8: stand-in without receipt.
    StandInWithoutReceipt,
    /// 9: paid without a payment request.
    PaidWithoutRequest,
}

impl Outcome {
    /// The outcome of a pagoPA code.
    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            0 => Some(Self::Paid),
            3 => Some(Self::Revoked),
            4 => Some(Self::PaidStandIn),
            8 => Some(Self::StandInWithoutReceipt),
            9 => Some(Self::PaidWithoutRequest),
            _ => None,
        }
    }

    /// The pagoPA code.
    pub fn code(self) -> i32 {
        match self {
            Self::Paid => 0,
            Self::Revoked => 3,
            Self::PaidStandIn => 4,
            Self::StandInWithoutReceipt => 8,
            Self::PaidWithoutRequest => 9,
        }
    }
}

/// One line of a flow. The derived order is the canonical order of the lines.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowLine {
    /// The IUV.
    pub iuv: String,
    /// The transfer, 1 to 5.
    pub transfer_index: i32,
    /// The PSP's receipt id.
    pub receipt_id: String,
    /// The outcome.
    pub outcome: Outcome,
    /// The amount settled, in cents.
    pub amount_cents: i64,
}

/// A line as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLineDraft {
    /// The IUV.
    pub iuv: String,
    /// The PSP's receipt id.
    pub receipt_id: String,
    /// The transfer index.
    pub transfer_index: i32,
    /// The amount in cents.
    pub amount_cents: i64,
    /// The outcome code.
    pub outcome: i32,
}

/// A flow as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowDraft {
    /// The flow id.
    pub flow_id: String,
    /// The flow's date.
    pub flow_date: Option<DateParts>,
    /// The PSP.
    pub psp_id: String,
    /// The settlement reference.
    pub settlement_reference: String,
    /// The creditor's fiscal code.
    pub creditor_fiscal_code: String,
    /// Declared count of lines.
    pub total_count: i64,
    /// Declared sum of the lines, in cents.
    pub total_amount_cents: i64,
    /// The lines, in the order received.
    pub lines: Vec<FlowLineDraft>,
}

/// A validated flow whose totals are those of its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The flow id.
    pub flow_id: String,
    /// The flow's date.
    pub flow_date: NaiveDate,
    /// The PSP.
    pub psp_id: String,
    /// The settlement reference.
    pub settlement_reference: String,
    /// The creditor's fiscal code.
    pub creditor_fiscal_code: String,
    /// The sum of the lines, in cents.
    pub amount_cents: i64,
    /// The lines, in canonical order.
    pub lines: Vec<FlowLine>,
}

fn check_id(value: &str, field: String) -> Result<(), DomainError> {
    if value.is_empty() {
        return Err(DomainError::Required { field });
    }
    let ok = value.len() <= MAX_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::Id { field })
    }
}

impl Flow {
    /// Checks the header, each line, then the totals (DOMAIN.md "Payments": totals = count
    /// and sum of the lines), for the creditor whose fiscal code is `creditor`.
    pub fn validate(draft: FlowDraft, creditor: &str) -> Result<Self, DomainError> {
        check_id(&draft.flow_id, format!("{ROOT}.header.flow_id"))?;
        let flow_date = draft
            .flow_date
            .ok_or_else(|| DomainError::Required {
                field: format!("{ROOT}.header.flow_date"),
            })
            .and_then(|parts| {
                civil_date(parts).ok_or_else(|| DomainError::Date {
                    field: format!("{ROOT}.header.flow_date"),
                })
            })?;
        check_id(&draft.psp_id, format!("{ROOT}.header.psp_id"))?;
        check_id(
            &draft.settlement_reference,
            format!("{ROOT}.header.settlement_reference"),
        )?;
        let cf_field = format!("{ROOT}.header.creditor_fiscal_code");
        if draft.creditor_fiscal_code.is_empty() {
            return Err(DomainError::Required { field: cf_field });
        }
        fiscal::check_any(&draft.creditor_fiscal_code).map_err(|cause| {
            DomainError::FiscalCode {
                field: cf_field.clone(),
                cause,
            }
        })?;
        if draft.creditor_fiscal_code != creditor {
            return Err(DomainError::CreditorMismatch { field: cf_field });
        }
        let mut lines = Vec::with_capacity(draft.lines.len());
        for (i, line) in draft.lines.into_iter().enumerate() {
            let at = |name: &str| format!("{ROOT}.lines[{i}].{name}");
            check_id(&line.iuv, at("iuv"))?;
            check_id(&line.receipt_id, at("receipt_id"))?;
            if !(1..=5).contains(&line.transfer_index) {
                return Err(DomainError::TransferIndex {
                    field: at("transfer_index"),
                });
            }
            money::check_cents(line.amount_cents).map_err(|cause| DomainError::Amount {
                field: at("amount_cents"),
                cause,
            })?;
            let outcome = Outcome::from_code(line.outcome).ok_or_else(|| DomainError::Outcome {
                field: at("outcome"),
            })?;
            lines.push(FlowLine {
                iuv: line.iuv,
                transfer_index: line.transfer_index,
                receipt_id: line.receipt_id,
                outcome,
                amount_cents: line.amount_cents,
            });
        }
        let count = i64::try_from(lines.len()).unwrap_or(i64::MAX);
        if draft.total_count != count {
            return Err(DomainError::FlowTotals {
                field: format!("{ROOT}.totals.count"),
                declared: draft.total_count,
                actual: count,
            });
        }
        // Each line is at most money::MAX_CENTS, so a sum overflows only past ~92 million
        // lines; it is then no total a flow can declare.
        let amount = money::checked_sum(lines.iter().map(|l| l.amount_cents)).unwrap_or(i64::MAX);
        if draft.total_amount_cents != amount {
            return Err(DomainError::FlowTotals {
                field: format!("{ROOT}.totals.amount_cents"),
                declared: draft.total_amount_cents,
                actual: amount,
            });
        }
        lines.sort();
        Ok(Self {
            flow_id: draft.flow_id,
            flow_date,
            psp_id: draft.psp_id,
            settlement_reference: draft.settlement_reference,
            creditor_fiscal_code: draft.creditor_fiscal_code,
            amount_cents: amount,
            lines,
        })
    }

    /// SHA-256 of the flow's content in canonical order (every field length-prefixed), so
    /// that the same flow with its lines in another order has the same fingerprint.
    pub fn fingerprint(&self) -> Vec<u8> {
        let mut hash = Sha256::new();
        let mut field = |s: &str| {
            hash.update(s.len().to_string().as_bytes());
            hash.update(b":");
            hash.update(s.as_bytes());
        };
        field(&self.flow_id);
        field(&self.flow_date.to_string());
        field(&self.psp_id);
        field(&self.settlement_reference);
        field(&self.creditor_fiscal_code);
        field(&self.amount_cents.to_string());
        field(&self.lines.len().to_string());
        for l in &self.lines {
            field(&l.iuv);
            field(&l.transfer_index.to_string());
            field(&l.receipt_id);
            field(&l.outcome.code().to_string());
            field(&l.amount_cents.to_string());
        }
        hash.finalize().to_vec()
    }

    /// The distinct IUVs of the lines.
    pub fn iuvs(&self) -> BTreeSet<String> {
        self.lines.iter().map(|l| l.iuv.clone()).collect()
    }
}

/// What is stored about one transfer of a notice named by a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferFact {
    /// 1 to 5.
    pub index: i32,
    /// The amount in cents.
    pub amount_cents: i64,
    /// The IBAN credited.
    pub iban: String,
    /// True if already reported by an earlier flow.
    pub reported: bool,
}

/// What is stored about one notice named by a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeFact {
    /// The position the notice belongs to.
    pub position_id: String,
    /// Its receipt, if paid: the receipt id and the PSP that took the payment.
    pub receipt: Option<(String, String)>,
    /// Its transfers.
    pub transfers: Vec<TransferFact>,
}

/// Why a line could not be reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExceptionKind {
    /// No notice has this IUV.
    UnknownIuv,
    /// The amount is not the transfer's.
    AmountMismatch,
    /// No receipt matches (none recorded, another receipt id, or taken by another PSP than
    /// the one settling it).
    LineWithoutReceipt,
    /// Outcome 3.
    Revoked,
    /// The transfer was already reported (earlier in the flow or by another flow).
    DuplicateLine,
    /// The notice has no such transfer.
    UnknownTransfer,
}

impl ExceptionKind {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownIuv => "UNKNOWN_IUV",
            Self::AmountMismatch => "AMOUNT_MISMATCH",
            Self::LineWithoutReceipt => "LINE_WITHOUT_RECEIPT",
            Self::Revoked => "REVOKED",
            Self::DuplicateLine => "DUPLICATE_LINE",
            Self::UnknownTransfer => "UNKNOWN_TRANSFER",
        }
    }
}

/// A line that could not be reconciled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowException {
    /// The line.
    pub line: FlowLine,
    /// Why.
    pub kind: ExceptionKind,
    /// The transfer's amount, when the notice and transfer are known.
    pub expected_amount_cents: Option<i64>,
}

/// A transfer reported by a line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MatchedTransfer {
    /// The IUV.
    pub iuv: String,
    /// 1 to 5.
    pub transfer_index: i32,
    /// The amount settled.
    pub amount_cents: i64,
    /// The IBAN it was settled to.
    pub iban: String,
    /// Its position.
    pub position_id: String,
}

/// What [`reconcile`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// The transfers reported, in canonical order.
    pub matched: Vec<MatchedTransfer>,
    /// The lines not reconciled, in canonical order.
    pub exceptions: Vec<FlowException>,
}

impl Reconciliation {
    /// The sum of the matched lines.
    pub fn matched_cents(&self) -> i64 {
        self.matched.iter().map(|m| m.amount_cents).sum()
    }
}

/// Matches the lines of `flow` (in canonical order) to `notices` (by IUV): a line is
/// reconciled when it is not revoked, its IUV is a notice of the comune with a receipt of the
/// same receipt id taken by the flow's PSP (the one settling it), the notice has its transfer, the transfer is not reported yet (by an
/// earlier flow or an earlier line), and the amounts agree. Otherwise it is an exception,
/// the first rule it breaks in that order.
pub fn reconcile(flow: &Flow, notices: &HashMap<String, NoticeFact>) -> Reconciliation {
    let mut taken: BTreeSet<(&str, i32)> = notices
        .iter()
        .flat_map(|(iuv, n)| {
            n.transfers
                .iter()
                .filter(|t| t.reported)
                .map(move |t| (iuv.as_str(), t.index))
        })
        .collect();
    let mut out = Reconciliation::default();
    for line in &flow.lines {
        let exception = |kind, expected| FlowException {
            line: line.clone(),
            kind,
            expected_amount_cents: expected,
        };
        if line.outcome == Outcome::Revoked {
            out.exceptions.push(exception(ExceptionKind::Revoked, None));
            continue;
        }
        let Some(notice) = notices.get(&line.iuv) else {
            out.exceptions
                .push(exception(ExceptionKind::UnknownIuv, None));
            continue;
        };
        let receipt_matches = notice
            .receipt
            .as_ref()
            .is_some_and(|(id, psp)| *id == line.receipt_id && *psp == flow.psp_id);
        if !receipt_matches {
            out.exceptions
                .push(exception(ExceptionKind::LineWithoutReceipt, None));
            continue;
        }
        let Some(transfer) = notice
            .transfers
            .iter()
            .find(|t| t.index == line.transfer_index)
        else {
            out.exceptions
                .push(exception(ExceptionKind::UnknownTransfer, None));
            continue;
        };
        if taken.contains(&(line.iuv.as_str(), line.transfer_index)) {
            out.exceptions.push(exception(
                ExceptionKind::DuplicateLine,
                Some(transfer.amount_cents),
            ));
            continue;
        }
        if transfer.amount_cents != line.amount_cents {
            out.exceptions.push(exception(
                ExceptionKind::AmountMismatch,
                Some(transfer.amount_cents),
            ));
            continue;
        }
        taken.insert((line.iuv.as_str(), line.transfer_index));
        out.matched.push(MatchedTransfer {
            iuv: line.iuv.clone(),
            transfer_index: line.transfer_index,
            amount_cents: line.amount_cents,
            iban: transfer.iban.clone(),
            position_id: notice.position_id.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CF: &str = "00110270113";

    fn line(iuv: &str, receipt: &str, index: i32, cents: i64, outcome: i32) -> FlowLineDraft {
        FlowLineDraft {
            iuv: iuv.into(),
            receipt_id: receipt.into(),
            transfer_index: index,
            amount_cents: cents,
            outcome,
        }
    }

    fn draft(lines: Vec<FlowLineDraft>) -> FlowDraft {
        FlowDraft {
            flow_id: "2026-01-11PSP-1".into(),
            flow_date: Some(DateParts {
                year: 2026,
                month: 1,
                day: 11,
            }),
            psp_id: "PSP".into(),
            settlement_reference: "TRN-1".into(),
            creditor_fiscal_code: CF.into(),
            total_count: i64::try_from(lines.len()).expect("few lines"),
            total_amount_cents: lines.iter().map(|l| l.amount_cents).sum(),
            lines,
        }
    }

    /// DOMAIN.md "Payments": totals are the count of the lines and the sum of their amounts;
    /// each is checked and named.
    #[test]
    fn totals_are_checked_and_named() {
        let lines = vec![line("A", "r", 1, 100, 0), line("B", "r", 1, 50, 0)];
        assert!(Flow::validate(draft(lines.clone()), CF).is_ok());
        let mut d = draft(lines.clone());
        d.total_count = 3;
        let err = Flow::validate(d, CF).expect_err("count");
        assert_eq!(err.reason(), "FLOW_TOTALS_MISMATCH");
        assert_eq!(err.field(), "flow.totals.count");
        let mut d = draft(lines);
        d.total_amount_cents = 151;
        let err = Flow::validate(d, CF).expect_err("amount");
        assert_eq!(err.field(), "flow.totals.amount_cents");
        let err = Flow::validate(draft(vec![line("A", "r", 6, 1, 0)]), CF).expect_err("index");
        assert_eq!(err.field(), "flow.lines[0].transfer_index");
        let err = Flow::validate(draft(vec![line("A", "r", 1, 1, 5)]), CF).expect_err("outcome");
        assert_eq!(err.reason(), "INVALID_OUTCOME");
        let err = Flow::validate(draft(vec![]), "00743110157").expect_err("creditor");
        assert_eq!(err.reason(), "CREDITOR_MISMATCH");
    }

    /// Each exception kind of DOMAIN.md "Payments" (unknown IUV, amount mismatch, line without
    /// a matching receipt, duplicates) plus revoked and unknown transfer, in canonical order.
    #[test]
    fn every_exception_kind() {
        let notice = |receipt: Option<&str>, reported: bool| NoticeFact {
            position_id: "p".into(),
            receipt: receipt.map(|r| (r.to_owned(), "PSP".to_owned())),
            transfers: vec![TransferFact {
                index: 1,
                amount_cents: 100,
                iban: "IBAN".into(),
                reported,
            }],
        };
        let notices: HashMap<String, NoticeFact> = [
            ("PAID".to_owned(), notice(Some("r1"), false)),
            ("UNPAID".to_owned(), notice(None, false)),
            ("DONE".to_owned(), notice(Some("r9"), true)),
        ]
        .into();
        let flow = Flow::validate(
            draft(vec![
                line("PAID", "r1", 1, 100, 0),
                line("PAID", "r1", 1, 100, 4),
                line("NOPE", "r1", 1, 100, 0),
                line("UNPAID", "r2", 1, 100, 8),
                line("PAID", "r1", 2, 100, 0),
                line("PAID", "r1", 1, 100, 3),
                line("DONE", "r9", 1, 99, 0),
                line("PAID", "rX", 1, 100, 9),
            ]),
            CF,
        )
        .expect("valid");
        let r = reconcile(&flow, &notices);
        assert_eq!(r.matched.len(), 1);
        assert_eq!(r.matched_cents(), 100);
        let kinds: Vec<(&str, ExceptionKind)> = r
            .exceptions
            .iter()
            .map(|e| (e.line.iuv.as_str(), e.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("DONE", ExceptionKind::DuplicateLine),
                ("NOPE", ExceptionKind::UnknownIuv),
                ("PAID", ExceptionKind::Revoked),
                ("PAID", ExceptionKind::DuplicateLine),
                ("PAID", ExceptionKind::LineWithoutReceipt),
                ("PAID", ExceptionKind::UnknownTransfer),
                ("UNPAID", ExceptionKind::LineWithoutReceipt),
            ]
        );

        // The same lines settled by a PSP that took none of these payments.
        let mut other = flow.clone();
        other.psp_id = "OTHER".into();
        let r = reconcile(&other, &notices);
        assert!(r.matched.is_empty());
        assert!(
            r.exceptions
                .iter()
                .any(|e| e.line.iuv == "PAID" && e.kind == ExceptionKind::LineWithoutReceipt)
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    const CF: &str = "00110270113";

    /// Lines over a few IUVs (some known, some paid, some reported), transfer indexes 1-3,
    /// a few receipt ids and amounts and every outcome, so that every rule is exercised.
    fn arb_line() -> impl Strategy<Value = FlowLineDraft> {
        (
            0..5usize,
            1..=3i32,
            0..2usize,
            prop::sample::select(vec![100i64, 200, 250]),
            prop::sample::select(vec![0i32, 3, 4, 8, 9]),
        )
            .prop_map(
                |(iuv, index, receipt, amount_cents, outcome)| FlowLineDraft {
                    iuv: format!("IUV{iuv}"),
                    receipt_id: format!("r{receipt}"),
                    transfer_index: index,
                    amount_cents,
                    outcome,
                },
            )
    }

    fn notices() -> HashMap<String, NoticeFact> {
        let transfers = |reported: bool| {
            vec![
                TransferFact {
                    index: 1,
                    amount_cents: 100,
                    iban: "I1".into(),
                    reported,
                },
                TransferFact {
                    index: 2,
                    amount_cents: 200,
                    iban: "I2".into(),
                    reported: false,
                },
            ]
        };
        let notice = |receipt: Option<&str>, reported| NoticeFact {
            position_id: "p".into(),
            receipt: receipt.map(|r| (r.to_owned(), "PSP".to_owned())),
            transfers: transfers(reported),
        };
        [
            ("IUV0".to_owned(), notice(Some("r0"), false)),
            ("IUV1".to_owned(), notice(Some("r1"), true)),
            ("IUV2".to_owned(), notice(None, false)),
            ("IUV3".to_owned(), notice(Some("r0"), false)),
        ]
        .into()
    }

    fn draft(lines: Vec<FlowLineDraft>, count: i64, amount: i64) -> FlowDraft {
        FlowDraft {
            flow_id: "F".into(),
            flow_date: Some(DateParts {
                year: 2026,
                month: 1,
                day: 11,
            }),
            psp_id: "PSP".into(),
            settlement_reference: "TRN".into(),
            creditor_fiscal_code: CF.into(),
            total_count: count,
            total_amount_cents: amount,
            lines,
        }
    }

    proptest! {
        /// DOMAIN.md "Payments" (check totals; flag duplicates): the totals check, the
        /// matching, the exceptions and the fingerprint do not depend on the order of the
        /// lines; every line is either matched or an exception; no transfer is matched twice.
        #[test]
        fn order_independent(
            (lines, shuffled) in prop::collection::vec(arb_line(), 0..24)
                .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
            count_off in prop::sample::select(vec![0i64, 0, 1, -1]),
            amount_off in prop::sample::select(vec![0i64, 0, 1]),
        ) {
            let count = i64::try_from(lines.len()).expect("few lines") + count_off;
            let amount: i64 = lines.iter().map(|l| l.amount_cents).sum::<i64>() + amount_off;
            let a = Flow::validate(draft(lines.clone(), count, amount), CF);
            let b = Flow::validate(draft(shuffled, count, amount), CF);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.is_ok(), count_off == 0 && amount_off == 0);
            if let (Ok(a), Ok(b)) = (a, b) {
                prop_assert_eq!(a.fingerprint(), b.fingerprint());
                let notices = notices();
                let ra = reconcile(&a, &notices);
                let rb = reconcile(&b, &notices);
                prop_assert_eq!(&ra, &rb);
                prop_assert_eq!(ra.matched.len() + ra.exceptions.len(), lines.len());
                let distinct: BTreeSet<(&str, i32)> = ra
                    .matched
                    .iter()
                    .map(|m| (m.iuv.as_str(), m.transfer_index))
                    .collect();
                prop_assert_eq!(distinct.len(), ra.matched.len());
                prop_assert!(ra.matched.iter().all(|m| m.iuv != "IUV1" || m.transfer_index != 1));
            }
        }
    }
}
