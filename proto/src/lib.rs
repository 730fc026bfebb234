//! The Unione contract: the generated code of every `.proto` under `proto/unione`, and the
//! encoded descriptor set that servers publish through gRPC reflection.
//!
//! Modules mirror the protobuf packages (`unione.registry.v1` is `unione::registry::v1`);
//! the areas are also re-exported at the crate root (`unione_proto::registry::v1`).

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// The encoded `FileDescriptorSet` of every Unione proto and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/unione_descriptor.bin"));

/// Vendored Google types.
pub mod google {
    /// `google.type`.
    pub mod r#type {
        include!(concat!(env!("OUT_DIR"), "/google.r#type.rs"));
    }
    /// `google.api` annotations.
    pub mod api {
        tonic::include_proto!("google.api");
    }
}

/// The `unione.*` packages.
pub mod unione {
    /// `unione.common`.
    pub mod common {
        /// `unione.common.v1`.
        pub mod v1 {
            tonic::include_proto!("unione.common.v1");
        }
    }

    /// `unione.federation`: the directory and the node description.
    pub mod federation {
        /// `unione.federation.v1`.
        pub mod v1 {
            tonic::include_proto!("unione.federation.v1");
        }
    }

    /// `unione.registry`.
    pub mod registry {
        /// `unione.registry.v1`.
        pub mod v1 {
            tonic::include_proto!("unione.registry.v1");
        }
    }

    /// `unione.payments`.
    pub mod payments {
        /// `unione.payments.v1`.
        pub mod v1 {
            tonic::include_proto!("unione.payments.v1");
        }
    }

    /// `unione.quality`.
    pub mod quality {
        /// `unione.quality.v1`.
        pub mod v1 {
            tonic::include_proto!("unione.quality.v1");
        }
    }
}

pub use unione::{common, federation, payments, quality, registry};
