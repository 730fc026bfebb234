//! `unione certs`, run as an operator would: the fingerprint it prints for a certificate is the
//! one the directory's `[[revoked_certificates]]` entries take (issue 6, revocation).

use std::process::Command;

use sha2::{Digest, Sha256};

fn unione(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unione"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The printed fingerprint is `sha256:` and the SHA-256 of the certificate's DER (the PEM body
/// decoded), and a file that is not a certificate is refused.
#[test]
fn certs_fingerprint_prints_the_sha256_of_the_der() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let certs = certs.to_str().expect("a UTF-8 path");
    assert!(unione(&["certs", "init", "--dir", certs]).0);
    assert!(
        unione(&[
            "certs", "issue", "--dir", certs, "--kind", "node", "--id", "luni"
        ])
        .0
    );
    let pem_path = format!("{certs}/nodes/luni.pem");

    let (ok, stdout, stderr) = unione(&["certs", "fingerprint", &pem_path]);
    assert!(ok, "{stderr}");
    let pem = std::fs::read_to_string(&pem_path).expect("the certificate");
    let der = unione_kit::tls::pem_certificates(pem.as_bytes())
        .expect("PEM")
        .remove(0);
    assert_eq!(
        stdout.trim(),
        format!("sha256:{}", hex::encode(Sha256::digest(der.as_ref())))
    );

    let (ok, _, stderr) = unione(&["certs", "fingerprint", &format!("{certs}/nodes/luni.key")]);
    assert!(!ok, "a key is not a certificate");
    assert!(stderr.contains("luni.key"), "{stderr}");
}
