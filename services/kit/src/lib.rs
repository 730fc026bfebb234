//! What every Unione server shares: configuration, storage, TLS and certificates, tokens,
//! telemetry and metrics, the error model, resource names and routing, pagination,
//! idempotency, and the server builder that gives any service health, reflection, limits and
//! graceful shutdown.

pub mod bench;
pub mod certs;
pub mod config;
pub mod error;
pub mod idempotency;
pub mod italy;
pub mod metrics;
pub mod names;
pub mod pagination;
pub mod principal;
pub mod served;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod token;
pub mod transfer;

pub use error::ApiError;
pub use names::Istat;
pub use served::{ComuneProfile, Served};
pub use storage::Database;
