//! Compiles the `.proto` files with protox (pure Rust, no system protoc) and generates the
//! prost messages and tonic clients and servers, plus the encoded descriptor set that the
//! servers expose through gRPC reflection.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "unione/common/v1/common.proto",
    "unione/federation/v1/directory.proto",
    "unione/federation/v1/node.proto",
    "unione/registry/v1/residents.proto",
    "unione/payments/v1/debt_positions.proto",
    "unione/quality/v1/kpis.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", root.join("unione").display());
    println!("cargo:rerun-if-changed={}", root.join("google").display());

    let files = protox::compile(PROTOS, [&root])?;
    let descriptor_path = out.join("unione_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&files))?;

    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .skip_protoc_run()
        .compile_fds(files)?;
    Ok(())
}
