//! The federation's certificate authority and the certificates it issues (`unione certs`).
//!
//! Every node and gateway has a certificate whose identity (a DNS subject alternative name,
//! `{id}.nodes.unione.internal` or `{id}.gateways.unione.internal`) names it. The directory,
//! not the certificate, says which comuni and functions a node serves, so a function can move
//! to another node without reissuing certificates.
//!
//! Files in a certificate directory: `ca.pem` and `ca.key` (the CA; keep the key offline in
//! production), `{kind}/{id}.pem` and `{kind}/{id}.key`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, date_time_ymd,
};

/// The DNS suffix of node identities.
pub const NODE_SUFFIX: &str = "nodes.unione.internal";
/// The DNS suffix of gateway identities.
pub const GATEWAY_SUFFIX: &str = "gateways.unione.internal";

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A node running services.
    Node,
    /// A federation gateway.
    Gateway,
    /// A client that is neither (a tool, a test).
    Client,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Self::Node => "nodes",
            Self::Gateway => "gateways",
            Self::Client => "clients",
        }
    }

    /// The identity of `id` for this kind.
    pub fn identity(self, id: &str) -> String {
        match self {
            Self::Node => format!("{id}.{NODE_SUFFIX}"),
            Self::Gateway => format!("{id}.{GATEWAY_SUFFIX}"),
            Self::Client => format!("{id}.clients.unione.internal"),
        }
    }
}

/// Paths of an issued certificate and its key.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The private key (PKCS#8 PEM).
    pub key: PathBuf,
}

/// The CA certificate path in `dir`.
pub fn ca_cert_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

/// Creates the federation CA in `dir` unless it exists. Returns whether it was created.
pub fn ensure_ca(dir: &Path, federation: &str) -> anyhow::Result<bool> {
    if ca_cert_path(dir).exists() {
        return Ok(false);
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = KeyPair::generate().context("generating the CA key")?;
    let mut params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, federation);
    dn.push(DnType::CommonName, format!("{federation} federation CA"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, 20);
    let cert = params.self_signed(&key).context("signing the CA")?;
    write_private(&dir.join("ca.key"), &key.serialize_pem())?;
    fs::write(ca_cert_path(dir), cert.pem())?;
    Ok(true)
}

/// Issues (or reissues) the certificate of `id` as `kind`, signed by the CA in `dir`. Server
/// certificates also name `localhost` and `127.0.0.1`, for clients that dial an address.
pub fn issue(dir: &Path, kind: Kind, id: &str) -> anyhow::Result<Issued> {
    anyhow::ensure!(
        !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "an id is lowercase letters, digits and dashes: `{id}`"
    );
    let ca_key =
        KeyPair::from_pem(&fs::read_to_string(dir.join("ca.key")).context("reading ca.key")?)
            .context("parsing ca.key")?;
    let ca_pem = fs::read_to_string(ca_cert_path(dir)).context("reading ca.pem")?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("loading the CA")?;

    let identity = kind.identity(id);
    let mut names = vec![identity.clone()];
    if kind != Kind::Client {
        names.push("localhost".to_owned());
    }
    let mut params = CertificateParams::new(names).context("certificate parameters")?;
    if kind != Kind::Client {
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, identity);
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    set_validity(&mut params, 2);
    let key = KeyPair::generate().context("generating a key")?;
    let cert = params.signed_by(&key, &issuer).context("signing")?;

    let sub = dir.join(kind.dir());
    fs::create_dir_all(&sub)?;
    let issued = Issued {
        cert: sub.join(format!("{id}.pem")),
        key: sub.join(format!("{id}.key")),
    };
    write_private(&issued.key, &key.serialize_pem())?;
    fs::write(&issued.cert, cert.pem())?;
    Ok(issued)
}

/// The paths where `issue` puts the certificate of `id`.
pub fn paths(dir: &Path, kind: Kind, id: &str) -> Issued {
    let sub = dir.join(kind.dir());
    Issued {
        cert: sub.join(format!("{id}.pem")),
        key: sub.join(format!("{id}.key")),
    }
}

/// Valid from a year ago (clock skew between towns' servers is real) for `years` years.
fn set_validity(params: &mut CertificateParams, years: i32) {
    use chrono::Datelike;
    let now = chrono::Utc::now();
    let month = u8::try_from(now.month()).expect("months fit u8");
    params.not_before = date_time_ymd(now.year() - 1, month, 1);
    params.not_after = date_time_ymd(now.year() + years, month, 1);
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_name_their_holder_and_the_ca_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(ensure_ca(dir.path(), "Test").expect("CA created"));
        let ca_before = fs::read(ca_cert_path(dir.path())).expect("ca.pem");
        assert!(
            !ensure_ca(dir.path(), "Test").expect("CA kept"),
            "an existing CA is never replaced"
        );
        assert_eq!(
            fs::read(ca_cert_path(dir.path())).expect("ca.pem"),
            ca_before
        );

        let node = issue(dir.path(), Kind::Node, "sarzana").expect("node certificate");
        let pem = fs::read_to_string(&node.cert).expect("cert");
        let der = rustls_pki_der(&pem);
        let names = crate::tls::dns_names(&der);
        assert!(
            names.contains(&"sarzana.nodes.unione.internal".to_owned()),
            "{names:?}"
        );
        assert!(names.contains(&"localhost".to_owned()));

        let client = issue(dir.path(), Kind::Client, "tool").expect("client certificate");
        let names = crate::tls::dns_names(&rustls_pki_der(
            &fs::read_to_string(&client.cert).expect("cert"),
        ));
        assert_eq!(names, vec!["tool.clients.unione.internal".to_owned()]);

        assert!(
            issue(dir.path(), Kind::Node, "Bad Id").is_err(),
            "ids are checked"
        );
    }

    fn rustls_pki_der(pem: &str) -> Vec<u8> {
        use base64::Engine as _;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("PEM body is base64")
    }
}
