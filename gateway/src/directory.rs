//! The federation directory: which comuni are members, which nodes exist, and which node
//! provides which function for which comune.
//!
//! It arrives as a TOML file ([`DirectoryFile`], written by an administrator or by the demo)
//! and is validated into a [`Directory`], sorted and checked, before the gateway stores or
//! serves it. A refused file names the entry at fault.
//!
//! ```toml
//! [[members]]
//! istat = "011027"
//! name = "Sarzana"
//! fiscal_code = "00160180119"
//! cadastral_code = "I449"
//! population = 21800
//! province = "SP"
//! peer_group = "magra-valley"
//! ipa_code = "c_i449"
//! segregation_code = "01"
//!
//! [[nodes]]
//! node_id = "sarzana"
//! endpoint = "https://127.0.0.1:7401"
//!
//! [[provisions]]
//! comune = "011027"
//! function = "registry"   # registry | payments | quality
//! node = "sarzana"
//!
//! # Optional: certificates no gateway may trust any more, though the CA signed them.
//! [[revoked_certificates]]
//! fingerprint = "sha256:3f1c...e9"  # 64 lowercase hex digits: `unione certs fingerprint cert.pem`
//! node = "sarzana"                  # whose it was; the node need not be listed any more
//! reason = "key compromise"
//! revoked_at = "2026-12-06"         # a calendar date, YYYY-MM-DD
//! ```
//!
//! A revoked certificate is refused on both paths through the gateway: the gateway does not
//! complete a handshake with a node presenting it, and refuses a node calling through the
//! gateway with it (UNAUTHENTICATED, `CERTIFICATE_REVOKED`). Revocations are part of the
//! content hash, so listing one makes a new, audited directory version.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A shared function a node provides for a comune.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Function {
    /// The registry office.
    Registry,
    /// The payments desk.
    Payments,
    /// The quality office.
    Quality,
}

impl Function {
    /// Every function.
    pub const ALL: [Function; 3] = [Self::Registry, Self::Payments, Self::Quality];

    /// The lowercase name used in the directory file and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::Payments => "payments",
            Self::Quality => "quality",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The protobuf enum.
    pub fn to_proto(self) -> unione_proto::common::v1::Function {
        use unione_proto::common::v1::Function as P;
        match self {
            Self::Registry => P::Registry,
            Self::Payments => P::Payments,
            Self::Quality => P::Quality,
        }
    }

    /// The primary gRPC service of the function, whose health check says whether the
    /// function is served.
    pub fn health_service(self) -> &'static str {
        match self {
            Self::Registry => "unione.registry.v1.ResidentService",
            Self::Payments => "unione.payments.v1.DebtPositionService",
            Self::Quality => "unione.quality.v1.KpiService",
        }
    }
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member comune, as written in the directory file.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEntry {
    /// The six-digit ISTAT code, e.g. `011027`.
    pub istat: String,
    /// The comune's name.
    pub name: String,
    /// The 11-digit numeric fiscal code.
    #[serde(default)]
    pub fiscal_code: String,
    /// The cadastral code: a letter and three digits, e.g. `I449`.
    #[serde(default)]
    pub cadastral_code: String,
    /// Resident population.
    #[serde(default)]
    pub population: i64,
    /// Province abbreviation, e.g. `SP`.
    #[serde(default)]
    pub province: String,
    /// The peer group for benchmarks, e.g. `magra-valley`.
    #[serde(default)]
    pub peer_group: String,
    /// The IPA code of the administration.
    #[serde(default)]
    pub ipa_code: String,
    /// The pagoPA segregation code, two digits.
    #[serde(default)]
    pub segregation_code: String,
}

/// A node, as written in the directory file.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// The node id (lowercase letters, digits, dashes), also its certificate identity
    /// `{node_id}.nodes.unione.internal`.
    pub node_id: String,
    /// `https://host:port`.
    pub endpoint: String,
}

/// One node provides one function for one comune, as written in the directory file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionEntry {
    /// The ISTAT code of the comune served.
    pub comune: String,
    /// `registry`, `payments` or `quality`.
    pub function: String,
    /// The node id of the provider.
    pub node: String,
}

/// A revoked certificate, as written in the directory file and as validated: whatever the CA
/// signed, no gateway trusts a certificate with this fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedCertificate {
    /// `sha256:` and the 64 lowercase hex digits of the SHA-256 of the certificate's DER
    /// ([`unione_kit::tls::fingerprint`], `unione certs fingerprint`).
    pub fingerprint: String,
    /// The node whose certificate it was. It must be a well-formed node id but need not be
    /// listed: a node removed from the directory stays revoked.
    pub node: String,
    /// Why, e.g. `key compromise`.
    pub reason: String,
    /// When it was revoked, a calendar date `YYYY-MM-DD`. The revocation applies as soon as
    /// the directory lists it, whatever the date.
    pub revoked_at: String,
}

/// The directory file (`directory.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryFile {
    /// The member comuni.
    #[serde(default)]
    pub members: Vec<MemberEntry>,
    /// The nodes.
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
    /// Which node provides which function for which comune.
    #[serde(default)]
    pub provisions: Vec<ProvisionEntry>,
    /// Certificates no gateway may trust any more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked_certificates: Vec<RevokedCertificate>,
}

/// A checked provision.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Provision {
    /// The ISTAT code of the comune.
    pub comune: String,
    /// The function.
    pub function: Function,
    /// The providing node's id.
    pub node: String,
}

/// A validated directory: members sorted by ISTAT code, nodes by id, provisions by comune
/// and function, revoked certificates by fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Directory {
    /// The members, by ISTAT code.
    pub members: Vec<MemberEntry>,
    /// The nodes, by id.
    pub nodes: Vec<NodeEntry>,
    /// The provisions, by comune then function.
    pub provisions: Vec<Provision>,
    /// The revoked certificates, by fingerprint. Left out of the canonical form when there is
    /// none, so a directory without revocations keeps the hash it had before they existed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revoked_certificates: Vec<RevokedCertificate>,
}

/// Why a directory was refused. Each names the entry at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DirectoryError {
    /// The file cannot be read.
    #[error("reading the directory file {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The file is not valid TOML or has unknown or missing keys.
    #[error("parsing the directory file: {0}")]
    Parse(String),
    /// A member's ISTAT code is not six digits.
    #[error("members[{index}]: istat `{istat}` is not a six-digit ISTAT code")]
    InvalidIstat {
        /// Position in the file.
        index: usize,
        /// The code given.
        istat: String,
    },
    /// A member field is malformed.
    #[error("member {istat}: {field} {problem}")]
    InvalidMember {
        /// The member.
        istat: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// Two members have the same ISTAT code.
    #[error("member {istat} is listed twice")]
    DuplicateMember {
        /// The code.
        istat: String,
    },
    /// A node id is not lowercase letters, digits and dashes.
    #[error("nodes[{index}]: node_id `{node_id}` must be lowercase letters, digits and dashes")]
    InvalidNodeId {
        /// Position in the file.
        index: usize,
        /// The id given.
        node_id: String,
    },
    /// Two nodes have the same id.
    #[error("node {node_id} is listed twice")]
    DuplicateNode {
        /// The id.
        node_id: String,
    },
    /// A node's endpoint is not `https://host:port`.
    #[error("node {node_id}: endpoint `{endpoint}` is not https://host:port ({problem})")]
    InvalidEndpoint {
        /// The node.
        node_id: String,
        /// The endpoint given.
        endpoint: String,
        /// What is wrong.
        problem: String,
    },
    /// A provision names an unknown function.
    #[error(
        "provisions[{index}] ({comune} {function} -> {node}): function `{function}` is not \
         registry, payments or quality"
    )]
    UnknownFunction {
        /// Position in the file.
        index: usize,
        /// The comune.
        comune: String,
        /// The function given.
        function: String,
        /// The node.
        node: String,
    },
    /// A provision names a comune that is not a member.
    #[error("provisions[{index}] ({comune} {function} -> {node}): comune {comune} is not a member")]
    UnknownComune {
        /// Position in the file.
        index: usize,
        /// The comune given.
        comune: String,
        /// The function.
        function: String,
        /// The node.
        node: String,
    },
    /// A provision names a node that is not listed.
    #[error("provisions[{index}] ({comune} {function} -> {node}): node {node} is not listed")]
    UnknownNode {
        /// Position in the file.
        index: usize,
        /// The comune.
        comune: String,
        /// The function.
        function: String,
        /// The node given.
        node: String,
    },
    /// A revoked certificate entry is malformed.
    #[error("revoked_certificates[{index}] ({fingerprint}): {field} {problem}")]
    InvalidRevocation {
        /// Position in the file.
        index: usize,
        /// The fingerprint given.
        fingerprint: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The same certificate is revoked twice.
    #[error("revoked certificate {fingerprint} is listed twice")]
    DuplicateRevocation {
        /// The fingerprint.
        fingerprint: String,
    },
    /// Two providers for the same comune and function.
    #[error("comune {comune} has two providers of {function}: {first} and {second}")]
    TwoProviders {
        /// The comune.
        comune: String,
        /// The function.
        function: Function,
        /// The first provider listed.
        first: String,
        /// The second provider listed.
        second: String,
    },
}

impl DirectoryFile {
    /// Parses the TOML text of a directory file (not yet validated).
    pub fn parse(text: &str) -> Result<Self, DirectoryError> {
        toml::from_str(text).map_err(|e| DirectoryError::Parse(e.to_string()))
    }

    /// Reads, parses and validates a directory file.
    pub fn load(path: &Path) -> Result<Directory, DirectoryError> {
        let text = std::fs::read_to_string(path).map_err(|e| DirectoryError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text)?.validate()
    }

    /// Checks every entry and returns the sorted directory.
    pub fn validate(&self) -> Result<Directory, DirectoryError> {
        let mut members = BTreeMap::<&str, &MemberEntry>::new();
        for (index, m) in self.members.iter().enumerate() {
            if !is_digits(&m.istat, 6) {
                return Err(DirectoryError::InvalidIstat {
                    index,
                    istat: m.istat.clone(),
                });
            }
            check_member(m)?;
            if members.insert(&m.istat, m).is_some() {
                return Err(DirectoryError::DuplicateMember {
                    istat: m.istat.clone(),
                });
            }
        }

        let mut nodes = BTreeMap::<&str, &NodeEntry>::new();
        for (index, n) in self.nodes.iter().enumerate() {
            if !is_node_id(&n.node_id) {
                return Err(DirectoryError::InvalidNodeId {
                    index,
                    node_id: n.node_id.clone(),
                });
            }
            check_endpoint(&n.endpoint).map_err(|problem| DirectoryError::InvalidEndpoint {
                node_id: n.node_id.clone(),
                endpoint: n.endpoint.clone(),
                problem,
            })?;
            if nodes.insert(&n.node_id, n).is_some() {
                return Err(DirectoryError::DuplicateNode {
                    node_id: n.node_id.clone(),
                });
            }
        }

        let mut provisions = BTreeMap::<(&str, Function), &str>::new();
        for (index, p) in self.provisions.iter().enumerate() {
            let Some(function) = Function::parse(&p.function) else {
                return Err(DirectoryError::UnknownFunction {
                    index,
                    comune: p.comune.clone(),
                    function: p.function.clone(),
                    node: p.node.clone(),
                });
            };
            if !members.contains_key(p.comune.as_str()) {
                return Err(DirectoryError::UnknownComune {
                    index,
                    comune: p.comune.clone(),
                    function: p.function.clone(),
                    node: p.node.clone(),
                });
            }
            if !nodes.contains_key(p.node.as_str()) {
                return Err(DirectoryError::UnknownNode {
                    index,
                    comune: p.comune.clone(),
                    function: p.function.clone(),
                    node: p.node.clone(),
                });
            }
            if let Some(first) = provisions.insert((&p.comune, function), &p.node) {
                return Err(DirectoryError::TwoProviders {
                    comune: p.comune.clone(),
                    function,
                    first: first.to_owned(),
                    second: p.node.clone(),
                });
            }
        }

        let mut revoked = BTreeMap::<&str, &RevokedCertificate>::new();
        for (index, r) in self.revoked_certificates.iter().enumerate() {
            check_revocation(r).map_err(|(field, problem)| DirectoryError::InvalidRevocation {
                index,
                fingerprint: r.fingerprint.clone(),
                field,
                problem: problem.to_owned(),
            })?;
            if revoked.insert(&r.fingerprint, r).is_some() {
                return Err(DirectoryError::DuplicateRevocation {
                    fingerprint: r.fingerprint.clone(),
                });
            }
        }

        Ok(Directory {
            revoked_certificates: revoked.into_values().cloned().collect(),
            members: members.into_values().cloned().collect(),
            nodes: nodes.into_values().cloned().collect(),
            provisions: provisions
                .into_iter()
                .map(|((comune, function), node)| Provision {
                    comune: comune.to_owned(),
                    function,
                    node: node.to_owned(),
                })
                .collect(),
        })
    }
}

impl Directory {
    /// The SHA-256 (hex) of the canonical form: the sorted entries as JSON. Two files that
    /// differ only in order, layout or comments have the same hash.
    pub fn content_hash(&self) -> String {
        let canonical = serde_json::to_vec(&("unione.directory.v1", self))
            .expect("the directory is plain data");
        hex::encode(Sha256::digest(&canonical))
    }

    /// The member with this ISTAT code.
    pub fn member(&self, istat: &str) -> Option<&MemberEntry> {
        self.members
            .binary_search_by(|m| m.istat.as_str().cmp(istat))
            .ok()
            .and_then(|i| self.members.get(i))
    }

    /// The provisions of one comune, by function.
    pub fn provisions_of(&self, istat: &str) -> &[Provision] {
        let start = self
            .provisions
            .partition_point(|p| p.comune.as_str() < istat);
        let end = self
            .provisions
            .partition_point(|p| p.comune.as_str() <= istat);
        &self.provisions[start..end]
    }

    /// The revocation of the certificate with this fingerprint (`sha256:...`), if revoked.
    pub fn revocation(&self, fingerprint: &str) -> Option<&RevokedCertificate> {
        self.revoked_certificates
            .binary_search_by(|r| r.fingerprint.as_str().cmp(fingerprint))
            .ok()
            .and_then(|i| self.revoked_certificates.get(i))
    }

    /// Back to the file form, e.g. to write it out.
    pub fn to_file(&self) -> DirectoryFile {
        DirectoryFile {
            revoked_certificates: self.revoked_certificates.clone(),
            members: self.members.clone(),
            nodes: self.nodes.clone(),
            provisions: self
                .provisions
                .iter()
                .map(|p| ProvisionEntry {
                    comune: p.comune.clone(),
                    function: p.function.as_str().to_owned(),
                    node: p.node.clone(),
                })
                .collect(),
        }
    }
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// Lowercase letters, digits and dashes, as certificate identities allow.
pub fn is_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && !id.starts_with('-')
        && !id.ends_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A cadastral code: one uppercase letter and three digits, e.g. `I449`.
fn is_cadastral(code: &str) -> bool {
    match code.as_bytes() {
        [letter, digits @ ..] => {
            letter.is_ascii_uppercase()
                && digits.len() == 3
                && digits.iter().all(u8::is_ascii_digit)
        }
        [] => false,
    }
}

fn check_member(m: &MemberEntry) -> Result<(), DirectoryError> {
    let bad = |field: &'static str, problem: &str| DirectoryError::InvalidMember {
        istat: m.istat.clone(),
        field,
        problem: problem.to_owned(),
    };
    if m.name.trim().is_empty() {
        return Err(bad("name", "is empty"));
    }
    // Well-formed only: published fiscal codes do not always carry a valid check digit.
    if !m.fiscal_code.is_empty() && !is_digits(&m.fiscal_code, 11) {
        return Err(bad("fiscal_code", "must be 11 digits"));
    }
    if !m.cadastral_code.is_empty() && !is_cadastral(&m.cadastral_code) {
        return Err(bad(
            "cadastral_code",
            "must be an uppercase letter and three digits",
        ));
    }
    if m.population < 0 {
        return Err(bad("population", "must not be negative"));
    }
    if !m.segregation_code.is_empty() && !is_digits(&m.segregation_code, 2) {
        return Err(bad("segregation_code", "must be two digits"));
    }
    Ok(())
}

/// Checks one revoked certificate entry: the field at fault and what is wrong with it.
fn check_revocation(r: &RevokedCertificate) -> Result<(), (&'static str, &'static str)> {
    let digits = r
        .fingerprint
        .strip_prefix(unione_kit::tls::FINGERPRINT_PREFIX)
        .ok_or((
            "fingerprint",
            "must be `sha256:` and 64 lowercase hex digits (`unione certs fingerprint cert.pem`)",
        ))?;
    if digits.len() != 64
        || !digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err((
            "fingerprint",
            "must be `sha256:` and 64 lowercase hex digits (`unione certs fingerprint cert.pem`)",
        ));
    }
    if !is_node_id(&r.node) {
        return Err((
            "node",
            "must be a node id: lowercase letters, digits and dashes",
        ));
    }
    if r.reason.trim().is_empty() {
        return Err(("reason", "is empty: say why the certificate is revoked"));
    }
    if r.revoked_at.len() != 10
        || chrono::NaiveDate::parse_from_str(&r.revoked_at, "%Y-%m-%d").is_err()
    {
        return Err(("revoked_at", "must be a calendar date YYYY-MM-DD"));
    }
    Ok(())
}

/// Checks `https://host:port` with nothing after the port.
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let uri: http::Uri = endpoint.parse().map_err(|_| "not a URI".to_owned())?;
    if uri.scheme_str() != Some("https") {
        return Err("the scheme must be https".into());
    }
    match uri.host() {
        Some(host) if !host.is_empty() => {}
        _ => return Err("no host".into()),
    }
    if uri.port_u16().is_none_or(|p| p == 0) {
        return Err("no port".into());
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err("nothing may follow the port".into());
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("no user information".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(istat: &str, name: &str) -> MemberEntry {
        MemberEntry {
            istat: istat.into(),
            name: name.into(),
            fiscal_code: "00160180119".into(),
            cadastral_code: "I449".into(),
            population: 21_800,
            province: "SP".into(),
            peer_group: "magra-valley".into(),
            ipa_code: "c_i449".into(),
            segregation_code: "01".into(),
        }
    }

    fn node(id: &str, port: u16) -> NodeEntry {
        NodeEntry {
            node_id: id.into(),
            endpoint: format!("https://127.0.0.1:{port}"),
        }
    }

    fn provision(comune: &str, function: &str, node: &str) -> ProvisionEntry {
        ProvisionEntry {
            comune: comune.into(),
            function: function.into(),
            node: node.into(),
        }
    }

    fn valley() -> DirectoryFile {
        DirectoryFile {
            members: vec![member("011027", "Sarzana"), member("011001", "Ameglia")],
            nodes: vec![node("sarzana", 7401)],
            provisions: vec![
                provision("011027", "registry", "sarzana"),
                provision("011001", "registry", "sarzana"),
                provision("011027", "payments", "sarzana"),
            ],
            revoked_certificates: Vec::new(),
        }
    }

    fn revoked(digit: char, node: &str) -> RevokedCertificate {
        RevokedCertificate {
            fingerprint: format!("sha256:{}", digit.to_string().repeat(64)),
            node: node.into(),
            reason: "key compromise".into(),
            revoked_at: "2026-12-06".into(),
        }
    }

    #[test]
    fn a_valid_directory_is_sorted() {
        let d = valley().validate().expect("valid");
        let codes: Vec<&str> = d.members.iter().map(|m| m.istat.as_str()).collect();
        assert_eq!(codes, ["011001", "011027"]);
        let provisions: Vec<(&str, Function)> = d
            .provisions
            .iter()
            .map(|p| (p.comune.as_str(), p.function))
            .collect();
        assert_eq!(
            provisions,
            [
                ("011001", Function::Registry),
                ("011027", Function::Registry),
                ("011027", Function::Payments)
            ]
        );
        assert_eq!(d.provisions_of("011027").len(), 2);
        assert!(d.provisions_of("011002").is_empty());
        assert_eq!(d.member("011027").map(|m| m.name.as_str()), Some("Sarzana"));
        assert!(d.member("011002").is_none());
    }

    #[test]
    fn the_file_format_round_trips_through_toml() {
        let file = valley();
        let text = toml::to_string(&file).expect("serializes");
        assert!(
            text.contains("[[members]]") && text.contains("[[provisions]]"),
            "{text}"
        );
        assert_eq!(DirectoryFile::parse(&text).expect("parses"), file);

        let written = "[[members]]\nistat = \"011027\"\nname = \"Sarzana\"\nfiscal_code = \
                       \"00160180119\"\ncadastral_code = \"I449\"\npopulation = 21800\n\
                       province = \"SP\"\npeer_group = \"magra-valley\"\nipa_code = \"c_i449\"\n\
                       segregation_code = \"01\"\n[[nodes]]\nnode_id = \"sarzana\"\nendpoint = \
                       \"https://127.0.0.1:7401\"\n[[provisions]]\ncomune = \"011027\"\n\
                       function = \"registry\"\nnode = \"sarzana\"\n";
        let d = DirectoryFile::parse(written)
            .expect("the documented format parses")
            .validate()
            .expect("and is valid");
        assert_eq!(d.members[0].population, 21_800);
        assert_eq!(d.provisions[0].function, Function::Registry);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = DirectoryFile::parse("[[nodes]]\nnode_id = \"a\"\nendpont = \"https://a:1\"\n")
            .expect_err("a typo is not silently ignored");
        assert!(matches!(err, DirectoryError::Parse(_)), "{err}");
    }

    #[test]
    fn a_member_listed_twice_is_refused() {
        let mut file = valley();
        file.members.push(member("011027", "Sarzana again"));
        let err = file.validate().expect_err("duplicate member");
        assert_eq!(
            err,
            DirectoryError::DuplicateMember {
                istat: "011027".into()
            }
        );
        assert!(err.to_string().contains("011027"), "{err}");
    }

    #[test]
    fn istat_codes_are_six_digits() {
        let mut file = valley();
        file.members.push(member("11027", "Short"));
        let err = file.validate().expect_err("five digits");
        assert!(
            matches!(err, DirectoryError::InvalidIstat { index: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("members[2]"), "{err}");
    }

    #[test]
    fn member_fields_are_well_formed() {
        let mut file = valley();
        file.members[0].segregation_code = "1".into();
        let err = file.validate().expect_err("bad segregation code");
        assert!(
            matches!(&err, DirectoryError::InvalidMember { field: "segregation_code", istat, .. } if istat == "011027"),
            "{err}"
        );
        for bad in ["i449", "I44", "I4490", "4449"] {
            let mut file = valley();
            file.members[0].cadastral_code = bad.into();
            assert!(
                matches!(
                    file.validate(),
                    Err(DirectoryError::InvalidMember {
                        field: "cadastral_code",
                        ..
                    })
                ),
                "`{bad}` is refused"
            );
        }
        let mut file = valley();
        file.members[1].fiscal_code = "123".into();
        assert!(matches!(
            file.validate(),
            Err(DirectoryError::InvalidMember {
                field: "fiscal_code",
                ..
            })
        ));
    }

    #[test]
    fn a_provision_to_an_unknown_node_is_refused() {
        let mut file = valley();
        file.provisions
            .push(provision("011027", "quality", "castelnuovo"));
        let err = file.validate().expect_err("unknown node");
        assert!(
            matches!(&err, DirectoryError::UnknownNode { index: 3, node, .. } if node == "castelnuovo"),
            "{err}"
        );
        assert!(err.to_string().contains("provisions[3]"), "{err}");
    }

    #[test]
    fn a_provision_for_a_non_member_is_refused() {
        let mut file = valley();
        file.provisions
            .push(provision("011020", "registry", "sarzana"));
        let err = file.validate().expect_err("unknown comune");
        assert!(
            matches!(&err, DirectoryError::UnknownComune { comune, .. } if comune == "011020"),
            "{err}"
        );
    }

    #[test]
    fn two_providers_of_one_function_are_refused() {
        let mut file = valley();
        file.nodes.push(node("arcola", 7402));
        file.provisions
            .push(provision("011027", "registry", "arcola"));
        let err = file.validate().expect_err("two providers");
        assert_eq!(
            err,
            DirectoryError::TwoProviders {
                comune: "011027".into(),
                function: Function::Registry,
                first: "sarzana".into(),
                second: "arcola".into(),
            }
        );
    }

    #[test]
    fn unknown_functions_are_refused() {
        let mut file = valley();
        file.provisions
            .push(provision("011027", "taxes", "sarzana"));
        assert!(matches!(
            file.validate(),
            Err(DirectoryError::UnknownFunction { .. })
        ));
    }

    #[test]
    fn nodes_are_unique_with_valid_ids_and_endpoints() {
        let mut file = valley();
        file.nodes.push(node("sarzana", 7402));
        assert_eq!(
            file.validate(),
            Err(DirectoryError::DuplicateNode {
                node_id: "sarzana".into()
            })
        );

        for bad in ["Sarzana", "sar zana", "", "-x", "sarzana_1"] {
            let mut file = valley();
            file.nodes.push(node(bad, 7402));
            assert!(
                matches!(file.validate(), Err(DirectoryError::InvalidNodeId { .. })),
                "`{bad}` is refused"
            );
        }

        for bad in [
            "http://127.0.0.1:7401",
            "https://127.0.0.1",
            "https://127.0.0.1:7401/path",
            "https://:7401",
            "127.0.0.1:7401",
            "https://u@127.0.0.1:7401",
        ] {
            let mut file = valley();
            file.nodes[0].endpoint = bad.into();
            assert!(
                matches!(file.validate(), Err(DirectoryError::InvalidEndpoint { .. })),
                "`{bad}` is refused"
            );
        }
        for good in [
            "https://127.0.0.1:7401",
            "https://node.example.it:443",
            "https://[::1]:7401",
        ] {
            let mut file = valley();
            file.nodes[0].endpoint = good.into();
            file.validate()
                .unwrap_or_else(|e| panic!("`{good}` is valid: {e}"));
        }
    }

    #[test]
    fn the_hash_ignores_order_but_not_content() {
        let a = valley().validate().expect("valid");
        let mut reordered = valley();
        reordered.members.reverse();
        reordered.provisions.reverse();
        let b = reordered.validate().expect("valid");
        assert_eq!(a.content_hash(), b.content_hash());
        let mut changed = valley();
        changed.members[0].population += 1;
        assert_ne!(
            a.content_hash(),
            changed.validate().expect("valid").content_hash()
        );
        assert_eq!(a.to_file().validate().expect("valid"), a);
    }

    /// A revocation may name a node that is no longer listed (it stays revoked), and the
    /// documented format parses; entries are sorted and looked up by fingerprint.
    #[test]
    fn revoked_certificates_are_validated_and_sorted() {
        let mut file = valley();
        file.revoked_certificates = vec![revoked('b', "sarzana"), revoked('a', "luni")];
        let d = file.validate().expect("valid");
        let prints: Vec<&str> = d
            .revoked_certificates
            .iter()
            .map(|r| r.fingerprint.as_str())
            .collect();
        assert_eq!(
            prints,
            [revoked('a', "").fingerprint, revoked('b', "").fingerprint]
        );
        assert_eq!(
            d.revocation(&revoked('b', "").fingerprint)
                .map(|r| r.node.as_str()),
            Some("sarzana")
        );
        assert!(d.revocation(&revoked('c', "").fingerprint).is_none());
        assert_eq!(d.to_file().validate().expect("valid"), d);

        let written = format!(
            "[[members]]\nistat = \"011027\"\nname = \"Sarzana\"\n\
             [[revoked_certificates]]\nfingerprint = \"sha256:{}\"\nnode = \"luni\"\n\
             reason = \"key compromise\"\nrevoked_at = \"2026-12-06\"\n",
            "0123456789abcdef".repeat(4)
        );
        let d = DirectoryFile::parse(&written)
            .expect("the documented format parses")
            .validate()
            .expect("and is valid");
        assert_eq!(d.revoked_certificates[0].node, "luni");

        let err = DirectoryFile::parse(&written.replace("reason =", "cause ="))
            .expect_err("unknown keys are refused in revocations too");
        assert!(matches!(err, DirectoryError::Parse(_)), "{err}");
    }

    #[test]
    fn malformed_revocations_are_refused_naming_the_entry() {
        let good = revoked('a', "luni");
        let cases: [(&str, RevokedCertificate); 9] = [
            (
                "fingerprint",
                RevokedCertificate {
                    fingerprint: "a".repeat(64),
                    ..good.clone()
                },
            ),
            (
                "fingerprint",
                RevokedCertificate {
                    fingerprint: format!("sha1:{}", "a".repeat(64)),
                    ..good.clone()
                },
            ),
            (
                "fingerprint",
                RevokedCertificate {
                    fingerprint: format!("sha256:{}", "A".repeat(64)),
                    ..good.clone()
                },
            ),
            (
                "fingerprint",
                RevokedCertificate {
                    fingerprint: format!("sha256:{}", "a".repeat(63)),
                    ..good.clone()
                },
            ),
            (
                "fingerprint",
                RevokedCertificate {
                    fingerprint: format!("sha256:{}", "g".repeat(64)),
                    ..good.clone()
                },
            ),
            (
                "node",
                RevokedCertificate {
                    node: "Luni".into(),
                    ..good.clone()
                },
            ),
            (
                "reason",
                RevokedCertificate {
                    reason: " ".into(),
                    ..good.clone()
                },
            ),
            (
                "revoked_at",
                RevokedCertificate {
                    revoked_at: "06/12/2026".into(),
                    ..good.clone()
                },
            ),
            (
                "revoked_at",
                RevokedCertificate {
                    revoked_at: "2026-02-30".into(),
                    ..good.clone()
                },
            ),
        ];
        for (field, bad) in cases {
            let mut file = valley();
            file.revoked_certificates = vec![revoked('b', "sarzana"), bad.clone()];
            let err = file.validate().expect_err("malformed revocation");
            assert!(
                matches!(&err, DirectoryError::InvalidRevocation { index: 1, field: f, fingerprint, .. }
                    if *f == field && *fingerprint == bad.fingerprint),
                "{bad:?}: {err}"
            );
            assert!(
                err.to_string().starts_with("revoked_certificates[1] ("),
                "{err}"
            );
        }

        let mut file = valley();
        file.revoked_certificates = vec![good.clone(), revoked('a', "sarzana")];
        assert_eq!(
            file.validate(),
            Err(DirectoryError::DuplicateRevocation {
                fingerprint: good.fingerprint
            })
        );
    }

    /// A revocation is content: it makes a new version. A directory with none keeps the hash it
    /// had before revocations existed (the canonical form leaves the empty list out).
    #[test]
    fn revocations_change_the_hash() {
        let plain = valley().validate().expect("valid");
        let canonical =
            serde_json::to_string(&("unione.directory.v1", &plain)).expect("plain data");
        assert!(!canonical.contains("revoked_certificates"), "{canonical}");
        let mut file = valley();
        file.revoked_certificates.push(revoked('a', "sarzana"));
        let with = file.validate().expect("valid");
        assert_ne!(plain.content_hash(), with.content_hash());
        file.revoked_certificates[0].reason = "superseded".into();
        assert_ne!(
            with.content_hash(),
            file.validate().expect("valid").content_hash()
        );
    }
}
