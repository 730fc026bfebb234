//! Compiles the `.proto` files with protox (pure Rust, no system protoc) and generates the
//! prost messages and tonic clients and servers, plus the encoded descriptor set that the
//! servers expose through gRPC reflection.

use std::path::{Path, PathBuf};

/// Every `.proto` under `unione/`, sorted, so a new file needs no change here.
fn protos(dir: &Path, root: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            protos(&path, root, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            let relative = path.strip_prefix(root).expect("under the root");
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", root.join("unione").display());
    println!("cargo:rerun-if-changed={}", root.join("google").display());

    let mut files = Vec::new();
    protos(&root.join("unione"), &root, &mut files)?;
    files.sort();
    let files = protox::compile(&files, [&root])?;
    let descriptor_path = out.join("unione_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&files))?;

    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .skip_protoc_run()
        .compile_fds(files)?;
    Ok(())
}
