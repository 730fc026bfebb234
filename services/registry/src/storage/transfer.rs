//! What moves when the registry office of one comune moves to another node (`unione export` /
//! `unione import`; the machinery is `unione_kit::transfer`): every table of the registry and
//! the protocol register, parents before children, each scoped by its `comune` column, and the
//! registry's idempotency keys for the comune, so a client retrying a create after the move
//! still gets its first answer. Rows move verbatim: the daily seals' chain and their preservation receipts, the certificates'
//! seals and their verification codes (with the comune's seal key) verify on the new node.

use unione_kit::transfer::{Service, Table};

/// The registry's data of one comune.
pub const TABLES: &[Table] = &[
    Table::by_comune("registry_residents"),
    Table::by_comune("registry_residence_events"),
    Table::by_comune("registry_households"),
    Table::by_comune("registry_household_members"),
    Table::by_comune("registry_moves"),
    Table::by_comune("registry_certificate_keys"),
    Table::by_comune("registry_certificates"),
    Table::by_comune("protocol_registers"),
    Table::by_comune("protocol_counters"),
    Table::by_comune("protocol_blobs"),
    Table::by_comune("protocol_registrations"),
    Table::by_comune("protocol_events"),
    Table::by_comune("protocol_seals"),
    Table::by_comune("protocol_preservations"),
    Table::by_comune("registry_procedure_types"),
    Table::by_comune("registry_cases"),
    Table::by_comune("registry_case_events"),
    Table::by_comune("registry_access_log"),
    Table::idempotency_keys("registry/comuni/"),
];

/// The registry service, for `unione_kit::transfer::{export, import}`.
pub fn service() -> Service {
    Service {
        name: "registry",
        migrations: crate::storage::migrations,
        prefixes: &["registry_", "protocol_"],
        tables: TABLES,
    }
}
