//! The registry office of Unione (`unione.registry.v1.ResidentService`): the resident records
//! of each comune a node serves (DOMAIN.md "Registry", DPR 223/1989), each checked against the
//! codice fiscale rules (DOMAIN.md "Check digits"); and the protocol register
//! (`unione.registry.v1.ProtocolService`, [`protocol_service`]; DPR 445/2000 artt. 53-57);
//! households and residence events (`unione.registry.v1.HouseholdService`,
//! [`household_service`]), every change going to ANPR first through
//! [`domain::anpr::AnprConnector`]; and sealed certificates with a verification code
//! (`unione.registry.v1.CertificateService`, [`certificate_service`]; CAD art. 23); and cases
//! under L. 241/1990, registered in the protocol when submitted, with a computed deadline clock
//! (`unione.registry.v1.CaseService`, [`case_service`]). Sealed daily registers go to
//! preservation through [`domain::preservation::PreservationService`]; the node's archive
//! directory ([`archive::DirectoryArchive`]) is the implementation today.
//!
//! Three layers, one direction: [`grpc`] (decode, check the comune, map errors) calls
//! [`domain`] (rules, the codice fiscale; no I/O) and [`storage`] (sqlx over the node's
//! database). From an RPC to its SQL: `grpc::ResidentApi::create_resident` ->
//! `domain::ResidentDraft::validate` -> `storage::insert_resident`.

pub mod archive;
pub mod domain;
pub mod grpc;
pub mod storage;

pub use grpc::ResidentApi;
pub use grpc::access::AccessLogApi;
pub use grpc::cases::CaseApi;
pub use grpc::certificate::CertificateApi;
pub use grpc::household::HouseholdApi;
pub use grpc::moves::{MoveApi, MoveDispatcher};
pub use grpc::protocol::ProtocolApi;
pub use grpc::statistics::StatisticsApi;
use unione_kit::{Database, Served};
use unione_proto::registry::v1::access_log_service_server::AccessLogServiceServer;
use unione_proto::registry::v1::case_service_server::CaseServiceServer;
use unione_proto::registry::v1::certificate_service_server::CertificateServiceServer;
use unione_proto::registry::v1::household_service_server::HouseholdServiceServer;
use unione_proto::registry::v1::move_service_server::MoveServiceServer;
use unione_proto::registry::v1::protocol_service_server::ProtocolServiceServer;
use unione_proto::registry::v1::registry_statistics_service_server::RegistryStatisticsServiceServer;
use unione_proto::registry::v1::resident_service_server::ResidentServiceServer;

/// The service's migrations, to run on the node's database before serving.
pub fn migrations() -> unione_kit::storage::Migrations {
    storage::migrations()
}

/// The resident service for the comuni in `served`, over a database already migrated with
/// [`migrations`].
pub fn service(db: Database, served: Served) -> ResidentServiceServer<ResidentApi> {
    ResidentServiceServer::new(ResidentApi::new(db, served))
}

/// Largest request the protocol service decodes: a 10 MiB document with its attachments.
pub const PROTOCOL_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The protocol register service (`unione.registry.v1.ProtocolService`; DOMAIN.md "Protocol
/// register") for the comuni in `served`, over a database already migrated with
/// [`migrations`]. From an RPC to its SQL: `grpc::protocol::ProtocolApi` ->
/// `domain::protocol` -> `storage::protocol`.
pub fn protocol_service(db: Database, served: Served) -> ProtocolServiceServer<ProtocolApi> {
    ProtocolServiceServer::new(ProtocolApi::new(db, served))
        .max_decoding_message_size(PROTOCOL_MAX_MESSAGE_BYTES)
}

/// The household and residence-event service (`unione.registry.v1.HouseholdService`;
/// DOMAIN.md "Registry", Residents) for the comuni in `served`, over a database already
/// migrated with [`migrations`], with [`domain::anpr::NoAnpr`]: this comune's register is
/// authoritative until an ANPR connector is configured (then build it with
/// [`HouseholdApi::with_anpr`]). From an RPC to its SQL: `grpc::household::HouseholdApi` ->
/// `domain::household` (and `domain::anpr`) -> `storage::household`.
pub fn household_service(db: Database, served: Served) -> HouseholdServiceServer<HouseholdApi> {
    HouseholdServiceServer::new(HouseholdApi::new(db, served))
}

/// The move service (`unione.registry.v1.MoveService`; DOMAIN.md "Registry", Residents:
/// moves between member comuni) for the comuni in `served`, over a database already migrated
/// with [`migrations`], with [`domain::anpr::NoAnpr`]. `dispatcher` wakes this node's
/// [`MoveDispatcher`]; without one the node receives moves but does not start them. From an
/// RPC to its SQL: `grpc::moves::MoveApi` -> `domain::moves` -> `storage::moves` (and
/// `storage::household` for the events).
pub fn move_service(
    db: Database,
    served: Served,
    dispatcher: Option<std::sync::Arc<tokio::sync::Notify>>,
) -> MoveServiceServer<MoveApi> {
    MoveServiceServer::new(MoveApi::new(db, served, dispatcher))
}

/// The certificate service (`unione.registry.v1.CertificateService`; DOMAIN.md "Registry",
/// CAD art. 23) for the comuni in `served`, over a database already migrated with
/// [`migrations`]. VerifyCertificate needs no principal. From an RPC to its SQL:
/// `grpc::certificate::CertificateApi` -> `domain::certificate` (and `domain::pdf`) ->
/// `storage::certificate`.
pub fn certificate_service(
    db: Database,
    served: Served,
) -> CertificateServiceServer<CertificateApi> {
    CertificateServiceServer::new(CertificateApi::new(db, served))
}

/// The case service (`unione.registry.v1.CaseService`; DOMAIN.md "Registry", Cases; L.
/// 241/1990) for the comuni in `served`, over a database already migrated with
/// [`migrations`], on the system clock (tests inject one with [`CaseApi::with_clock`]). A
/// submission is registered in the protocol register in the same transaction. From an RPC to
/// its SQL: `grpc::cases::CaseApi` -> `domain::cases` -> `storage::cases` (and
/// `storage::protocol` for the registration).
pub fn case_service(db: Database, served: Served) -> CaseServiceServer<CaseApi> {
    CaseServiceServer::new(CaseApi::new(db, served))
        .max_decoding_message_size(PROTOCOL_MAX_MESSAGE_BYTES)
}

/// The statistics service (`unione.registry.v1.RegistryStatisticsService`: counts of cases
/// and certificates over a range of days, for the quality office's indicators) for the comuni
/// in `served`, over a database already migrated with [`migrations`]. From an RPC to its SQL:
/// `grpc::statistics::StatisticsApi` -> `domain::statistics` -> `storage::statistics`.
pub fn statistics_service(
    db: Database,
    served: Served,
) -> RegistryStatisticsServiceServer<StatisticsApi> {
    RegistryStatisticsServiceServer::new(StatisticsApi::new(db, served))
}

/// The personal-data access log service (`unione.registry.v1.AccessLogService`: who read
/// which record of a comune, when and why; issue 3, "Access and privacy") for the comuni in
/// `served`, over a database already migrated with [`migrations`]. Federation administrators
/// and auditors only. Every handler that returns personal data writes the log through
/// [`grpc::access::record_reads`] before answering. From an RPC to its SQL:
/// `grpc::access::AccessLogApi` -> `storage::access_log`.
pub fn access_log_service(db: Database, served: Served) -> AccessLogServiceServer<AccessLogApi> {
    AccessLogServiceServer::new(AccessLogApi::new(db, served))
}
