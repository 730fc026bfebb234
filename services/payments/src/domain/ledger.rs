//! The double-entry ledger (DOMAIN.md "Payments"; issue 4 "Ledger"): every movement of money
//! is a transaction of debits and credits in integer cents that balance, appended to the
//! comune's journal in the same database transaction as the fact it records.
//!
//! The chart of accounts, per comune (an account is a kind and a key, `kind:key`):
//!
//! | account                     | kind      | debited when                  | credited when                      |
//! |-----------------------------|-----------|-------------------------------|------------------------------------|
//! | `receivable:{position id}`  | asset     | the debt is recognised        | a receipt pays it                  |
//! | `creditor:{fiscal code}`    | revenue   | a recognition is reversed     | a transfer to that body is owed    |
//! | `psp-clearing:{psp id}`     | asset     | a PSP collects (a receipt)    | the PSP settles it (a flow)        |
//! | `bank:{iban}`               | asset     | a flow settles to that IBAN   | never here                         |
//!
//! So a position's receivable balance is what its debtor still owes; a PSP's clearing balance
//! is what it collected and has not settled yet; a bank account's is what arrived there.
//!
//! The amount recognised is that of one payment plan: the option in full if the position has
//! one, else the installments. When a position with an option in full is paid by installments
//! instead, the first installment's receipt also posts a PLAN_CHANGED transaction that
//! reverses the option in full and recognises the installments (the options are alternatives:
//! recognising both would count the debt twice).
//!
//! [`verify`] checks the invariants over the stored journal and receipts.

use std::collections::{BTreeMap, BTreeSet};

/// What a journal transaction records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TransactionKind {
    /// A debt position created: its plan recognised (reference: the position id).
    PositionCreated,
    /// Paid by installments instead of in full (reference: the position id).
    PlanChanged,
    /// A receipt stored (reference: the IUV paid).
    ReceiptRecorded,
    /// A reconciliation flow settled (reference: the flow id).
    FlowSettled,
}

impl TransactionKind {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Self::PositionCreated => "POSITION_CREATED",
            Self::PlanChanged => "PLAN_CHANGED",
            Self::ReceiptRecorded => "RECEIPT_RECORDED",
            Self::FlowSettled => "FLOW_SETTLED",
        }
    }

    /// The kind of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        [
            Self::PositionCreated,
            Self::PlanChanged,
            Self::ReceiptRecorded,
            Self::FlowSettled,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

/// The account names of the chart (see the module's table).
pub mod account {
    /// What the debtor of a position owes.
    pub fn receivable(position_id: &str) -> String {
        format!("receivable:{position_id}")
    }
    /// What is owed to a creditor body (a transfer's beneficiary).
    pub fn creditor(fiscal_code: &str) -> String {
        format!("creditor:{fiscal_code}")
    }
    /// What a PSP collected and has not settled.
    pub fn psp_clearing(psp_id: &str) -> String {
        format!("psp-clearing:{psp_id}")
    }
    /// What arrived on a bank account.
    pub fn bank(iban: &str) -> String {
        format!("bank:{iban}")
    }
    /// The prefix of every receivable account.
    pub const RECEIVABLE: &str = "receivable:";
    /// The prefix of every PSP clearing account.
    pub const PSP_CLEARING: &str = "psp-clearing:";
}

/// One entry: a debit or a credit (the other is zero) on one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// The account.
    pub account: String,
    /// Debited, in cents (0 for a credit).
    pub debit_cents: i64,
    /// Credited, in cents (0 for a debit).
    pub credit_cents: i64,
}

impl Posting {
    /// A debit.
    pub fn debit(account: String, cents: i64) -> Self {
        Self {
            account,
            debit_cents: cents,
            credit_cents: 0,
        }
    }

    /// A credit.
    pub fn credit(account: String, cents: i64) -> Self {
        Self {
            account,
            debit_cents: 0,
            credit_cents: cents,
        }
    }
}

/// A balanced journal transaction, ready to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalTransaction {
    /// What it records.
    pub kind: TransactionKind,
    /// The fact it records (position id, IUV, flow id).
    pub reference: String,
    /// The entries, in order.
    pub postings: Vec<Posting>,
}

impl JournalTransaction {
    /// A transaction, checked to balance (every builder here balances by construction).
    fn new(kind: TransactionKind, reference: &str, postings: Vec<Posting>) -> Self {
        let debits: i64 = postings.iter().map(|p| p.debit_cents).sum();
        let credits: i64 = postings.iter().map(|p| p.credit_cents).sum();
        assert_eq!(debits, credits, "a journal transaction balances");
        Self {
            kind,
            reference: reference.to_owned(),
            postings,
        }
    }
}

/// One transfer of an option, as far as the ledger needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerTransfer {
    /// The beneficiary's fiscal code.
    pub creditor_fiscal_code: String,
    /// The amount in cents.
    pub amount_cents: i64,
}

/// One option of a position, as far as the ledger needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerOption {
    /// True for an installment.
    pub installment: bool,
    /// The transfers.
    pub transfers: Vec<LedgerTransfer>,
}

/// The options of the recognised plan: the option in full if any, else the installments.
fn recognised_plan(options: &[LedgerOption]) -> Vec<&LedgerOption> {
    match options.iter().find(|o| !o.installment) {
        Some(full) => vec![full],
        None => options.iter().collect(),
    }
}

/// Debits the receivable and credits each transfer's beneficiary, per transfer of `plan`.
/// With `reverse`, the other way round.
fn recognition(position_id: &str, plan: &[&LedgerOption], reverse: bool) -> Vec<Posting> {
    let mut postings = Vec::new();
    for transfer in plan.iter().flat_map(|o| &o.transfers) {
        let receivable = account::receivable(position_id);
        let creditor = account::creditor(&transfer.creditor_fiscal_code);
        let cents = transfer.amount_cents;
        if reverse {
            postings.push(Posting::debit(creditor, cents));
            postings.push(Posting::credit(receivable, cents));
        } else {
            postings.push(Posting::debit(receivable, cents));
            postings.push(Posting::credit(creditor, cents));
        }
    }
    postings
}

/// The transaction of a position created: its recognised plan, receivable against revenue,
/// one pair of entries per transfer.
pub fn position_created(position_id: &str, options: &[LedgerOption]) -> JournalTransaction {
    JournalTransaction::new(
        TransactionKind::PositionCreated,
        position_id,
        recognition(position_id, &recognised_plan(options), false),
    )
}

/// The transactions of a receipt for option `index` of a position: PSP clearing against the
/// receivable; before it, if this is the first installment paid of a position whose
/// recognised plan was the option in full, the change of plan. `installments_paid_before` is
/// how many installments were paid before this receipt.
pub fn receipt_recorded(
    position_id: &str,
    options: &[LedgerOption],
    index: usize,
    installments_paid_before: usize,
    iuv: &str,
    psp_id: &str,
    amount_cents: i64,
) -> Vec<JournalTransaction> {
    let mut out = Vec::new();
    let paid_installment = options.get(index).is_some_and(|o| o.installment);
    let full = options.iter().find(|o| !o.installment);
    if let (true, 0, Some(full)) = (paid_installment, installments_paid_before, full) {
        let installments: Vec<&LedgerOption> = options.iter().filter(|o| o.installment).collect();
        let mut postings = recognition(position_id, &[full], true);
        postings.extend(recognition(position_id, &installments, false));
        out.push(JournalTransaction::new(
            TransactionKind::PlanChanged,
            position_id,
            postings,
        ));
    }
    out.push(JournalTransaction::new(
        TransactionKind::ReceiptRecorded,
        iuv,
        vec![
            Posting::debit(account::psp_clearing(psp_id), amount_cents),
            Posting::credit(account::receivable(position_id), amount_cents),
        ],
    ));
    out
}

/// The transaction of a flow settled: each bank account debited with what the flow's
/// reconciled lines credited to it, the PSP's clearing credited with the total. `None` when
/// nothing was reconciled.
pub fn flow_settled(
    flow_id: &str,
    psp_id: &str,
    settled: &[(String, i64)],
) -> Option<JournalTransaction> {
    let mut by_iban: BTreeMap<&str, i64> = BTreeMap::new();
    for (iban, cents) in settled {
        *by_iban.entry(iban.as_str()).or_default() += cents;
    }
    let total: i64 = by_iban.values().sum();
    if total == 0 {
        return None;
    }
    let mut postings: Vec<Posting> = by_iban
        .into_iter()
        .map(|(iban, cents)| Posting::debit(account::bank(iban), cents))
        .collect();
    postings.push(Posting::credit(account::psp_clearing(psp_id), total));
    Some(JournalTransaction::new(
        TransactionKind::FlowSettled,
        flow_id,
        postings,
    ))
}

/// One stored journal entry with its transaction, as [`verify`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFact {
    /// The transaction's id.
    pub transaction_id: String,
    /// The transaction's kind code as stored.
    pub kind: String,
    /// The transaction's reference.
    pub reference: String,
    /// The account.
    pub account: String,
    /// Debited, in cents.
    pub debit_cents: i64,
    /// Credited, in cents.
    pub credit_cents: i64,
}

/// One stored receipt, as [`verify`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptFact {
    /// The IUV paid.
    pub iuv: String,
    /// The amount, in cents.
    pub amount_cents: i64,
}

/// Which invariant a breach breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BreachKind {
    /// A transaction's debits and credits differ.
    UnbalancedTransaction,
    /// A receivable credited beyond what was recognised.
    OverpaidPosition,
    /// A receipt and the journal disagree.
    ReceiptMismatch,
}

/// A breach of an invariant, with what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Breach {
    /// Which invariant.
    pub kind: BreachKind,
    /// The transaction at fault, or empty.
    pub transaction_id: String,
    /// The account at fault, or empty.
    pub account: String,
    /// The IUV at fault, or empty.
    pub iuv: String,
    /// Expected, in cents.
    pub expected_cents: i64,
    /// Found, in cents.
    pub actual_cents: i64,
}

impl Breach {
    /// What is wrong, in English.
    pub fn detail(&self) -> String {
        match self.kind {
            BreachKind::UnbalancedTransaction => format!(
                "transaction {} debits {} cents but credits {} cents",
                self.transaction_id, self.expected_cents, self.actual_cents
            ),
            BreachKind::OverpaidPosition => format!(
                "{} was credited {} cents beyond the {} cents recognised",
                self.account,
                self.actual_cents - self.expected_cents,
                self.expected_cents
            ),
            BreachKind::ReceiptMismatch => format!(
                "the receipt of IUV {} is {} cents but the journal debits {} cents to PSP \
                 clearing for it",
                self.iuv, self.expected_cents, self.actual_cents
            ),
        }
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Transactions checked.
    pub transaction_count: i64,
    /// Entries checked.
    pub entry_count: i64,
    /// Sum of the debits.
    pub total_debit_cents: i64,
    /// Sum of the credits.
    pub total_credit_cents: i64,
    /// Receipts compared.
    pub receipt_count: i64,
    /// Sum of the receipts.
    pub receipt_total_cents: i64,
    /// Sum of the PSP clearing debits of receipt transactions.
    pub clearing_debit_cents: i64,
    /// The breaches, sorted.
    pub breaches: Vec<Breach>,
}

/// Checks the invariants of a comune's journal against its receipts:
/// 1. every transaction balances (debits = credits);
/// 2. no receivable is credited beyond what was debited to it (no position paid beyond its
///    amount, DOMAIN.md "Payments");
/// 3. each receipt has exactly its amount debited to PSP clearing by RECEIPT_RECORDED
///    transactions referencing its IUV, and no such debit lacks its receipt (so the sum of
///    the receipts is the sum of the clearing debits).
pub fn verify(entries: &[EntryFact], receipts: &[ReceiptFact]) -> Verification {
    let mut out = Verification::default();
    let mut transactions: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let mut receivables: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let mut clearing: BTreeMap<&str, i64> = BTreeMap::new();
    for e in entries {
        out.entry_count += 1;
        out.total_debit_cents += e.debit_cents;
        out.total_credit_cents += e.credit_cents;
        let t = transactions.entry(e.transaction_id.as_str()).or_default();
        t.0 += e.debit_cents;
        t.1 += e.credit_cents;
        if e.account.starts_with(account::RECEIVABLE) {
            let r = receivables.entry(e.account.as_str()).or_default();
            r.0 += e.debit_cents;
            r.1 += e.credit_cents;
        }
        if e.account.starts_with(account::PSP_CLEARING)
            && e.kind == TransactionKind::ReceiptRecorded.code()
        {
            *clearing.entry(e.reference.as_str()).or_default() += e.debit_cents;
            out.clearing_debit_cents += e.debit_cents;
        }
    }
    out.transaction_count = i64::try_from(transactions.len()).unwrap_or(i64::MAX);
    for (id, (debits, credits)) in &transactions {
        if debits != credits {
            out.breaches.push(Breach {
                kind: BreachKind::UnbalancedTransaction,
                transaction_id: (*id).to_owned(),
                account: String::new(),
                iuv: String::new(),
                expected_cents: *debits,
                actual_cents: *credits,
            });
        }
    }
    for (account, (debits, credits)) in &receivables {
        if credits > debits {
            out.breaches.push(Breach {
                kind: BreachKind::OverpaidPosition,
                transaction_id: String::new(),
                account: (*account).to_owned(),
                iuv: String::new(),
                expected_cents: *debits,
                actual_cents: *credits,
            });
        }
    }
    let mut seen = BTreeSet::new();
    for r in receipts {
        out.receipt_count += 1;
        out.receipt_total_cents += r.amount_cents;
        seen.insert(r.iuv.as_str());
        let journal = clearing.get(r.iuv.as_str()).copied().unwrap_or(0);
        if journal != r.amount_cents {
            out.breaches.push(mismatch(&r.iuv, r.amount_cents, journal));
        }
    }
    for (iuv, journal) in &clearing {
        if !seen.contains(iuv) {
            out.breaches.push(mismatch(iuv, 0, *journal));
        }
    }
    out.breaches.sort();
    out
}

fn mismatch(iuv: &str, expected: i64, actual: i64) -> Breach {
    Breach {
        kind: BreachKind::ReceiptMismatch,
        transaction_id: String::new(),
        account: String::new(),
        iuv: iuv.to_owned(),
        expected_cents: expected,
        actual_cents: actual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(cf: &str, cents: i64) -> LedgerTransfer {
        LedgerTransfer {
            creditor_fiscal_code: cf.into(),
            amount_cents: cents,
        }
    }

    fn facts(id: &str, t: &JournalTransaction) -> Vec<EntryFact> {
        t.postings
            .iter()
            .map(|p| EntryFact {
                transaction_id: id.into(),
                kind: t.kind.code().into(),
                reference: t.reference.clone(),
                account: p.account.clone(),
                debit_cents: p.debit_cents,
                credit_cents: p.credit_cents,
            })
            .collect()
    }

    /// Full 100.00 (two beneficiaries) or installments 60.00 + 50.00: the option in full is
    /// recognised at creation; the first installment changes the plan, so the receivable ends
    /// at zero once both installments are paid, and every transaction balances.
    #[test]
    fn plan_change_keeps_the_receivable_exact() {
        let options = vec![
            LedgerOption {
                installment: false,
                transfers: vec![transfer("A", 7_000), transfer("B", 3_000)],
            },
            LedgerOption {
                installment: true,
                transfers: vec![transfer("A", 6_000)],
            },
            LedgerOption {
                installment: true,
                transfers: vec![transfer("A", 5_000)],
            },
        ];
        let created = position_created("p", &options);
        assert_eq!(created.postings.len(), 4);
        let mut all = facts("t0", &created);
        let first = receipt_recorded("p", &options, 1, 0, "iuv1", "PSP", 6_000);
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].kind, TransactionKind::PlanChanged);
        for (i, t) in first.iter().enumerate() {
            all.extend(facts(&format!("t1{i}"), t));
        }
        let second = receipt_recorded("p", &options, 2, 1, "iuv2", "PSP", 5_000);
        assert_eq!(second.len(), 1);
        all.extend(facts("t2", &second[0]));
        let receipts = vec![
            ReceiptFact {
                iuv: "iuv1".into(),
                amount_cents: 6_000,
            },
            ReceiptFact {
                iuv: "iuv2".into(),
                amount_cents: 5_000,
            },
        ];
        let v = verify(&all, &receipts);
        assert_eq!(v.breaches, vec![]);
        assert_eq!(v.clearing_debit_cents, 11_000);
        let receivable: i64 = all
            .iter()
            .filter(|e| e.account == "receivable:p")
            .map(|e| e.debit_cents - e.credit_cents)
            .sum();
        assert_eq!(receivable, 0);

        // A second receipt credited against the same receivable is an overpayment, and a
        // clearing debit without its receipt is a mismatch.
        all.extend(facts(
            "t3",
            &receipt_recorded("p", &options, 2, 2, "iuv3", "PSP", 5_000)[0],
        ));
        let v = verify(&all, &receipts);
        let kinds: Vec<BreachKind> = v.breaches.iter().map(|b| b.kind).collect();
        assert_eq!(
            kinds,
            vec![BreachKind::OverpaidPosition, BreachKind::ReceiptMismatch]
        );
    }

    /// An altered entry unbalances its transaction.
    #[test]
    fn an_altered_entry_is_a_breach() {
        let t = flow_settled(
            "f",
            "PSP",
            &[("I1".into(), 100), ("I2".into(), 50), ("I1".into(), 1)],
        )
        .expect("something settled");
        assert_eq!(t.postings.len(), 3);
        let mut all = facts("t", &t);
        assert!(verify(&all, &[]).breaches.is_empty());
        all[0].debit_cents += 1;
        let v = verify(&all, &[]);
        assert_eq!(v.breaches.len(), 1);
        assert_eq!(v.breaches[0].kind, BreachKind::UnbalancedTransaction);
        assert!(flow_settled("f", "PSP", &[]).is_none());
    }
}
