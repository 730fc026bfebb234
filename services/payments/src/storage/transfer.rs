//! What moves when the payments desk of one comune moves to another node (`unione export` /
//! `unione import`; the machinery is `unione_kit::transfer`): debt positions with their
//! options, transfers and IUV counters, activations and sealed receipts, the double-entry
//! journal, reconciliation flows and cost-sharing apportionments, parents before children,
//! each scoped by its `comune` column (an apportionment by its capofila's), and the payments
//! idempotency keys for the comune. Rows move verbatim, so the receipts' seals and the ledger
//! verify on the new node, and the IUV counters go on from where they were (an IUV is never
//! issued twice).

use unione_kit::transfer::{Service, Table};

/// The payments desk's data of one comune.
pub const TABLES: &[Table] = &[
    Table::by_comune("payments_debt_positions"),
    Table::by_comune("payments_payment_options"),
    Table::by_comune("payments_transfers"),
    Table::by_comune("payments_iuv_sequences"),
    Table::by_comune("payments_activations"),
    Table::by_comune("payments_receipts"),
    Table::by_comune("payments_journal_transactions"),
    Table::by_comune("payments_journal_entries"),
    Table::by_comune("payments_reconciliation_flows"),
    Table::by_comune("payments_reconciliation_exceptions"),
    Table::by_comune("payments_reported_transfers"),
    Table::by_comune("payments_apportionments"),
    Table::by_comune("payments_apportionment_positions"),
    Table::idempotency_keys("payments/comuni/"),
];

/// The payments service, for `unione_kit::transfer::{export, import}`.
pub fn service() -> Service {
    Service {
        name: "payments",
        migrations: crate::storage::migrations,
        prefixes: &["payments_"],
        tables: TABLES,
    }
}
