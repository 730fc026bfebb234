//! User tokens: compact JWTs, so any language can verify them. `unione token` signs them with
//! the federation's own Ed25519 key (`alg: EdDSA`); a verifier also accepts the keys of a JWKS
//! file (`jwks.json` beside `token.pub`: Ed25519 `OKP` keys and P-256 `EC` keys, `alg: ES256`),
//! so an OpenID Connect provider can issue them, and the issuers it is told to trust. The end
//! user travels with a call as a principal separate from the calling organisation (DOMAIN.md,
//! Federation).

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey,
    VerificationAlgorithm,
};
use serde::{Deserialize, Serialize};

/// The issuer claim of every Unione token.
pub const ISSUER: &str = "unione";

/// What a user may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A municipal operator (counter or back office) of the comuni in `comuni`.
    Operator,
    /// A federation administrator.
    Admin,
    /// A citizen, identified by the codice fiscale an identity provider (SPID, CIE) gives.
    Citizen,
    /// An integrator's application, acting for the comuni in `comuni`.
    Integrator,
    /// An auditor: reads the audit log, nothing else.
    Auditor,
    /// A payment service provider: only the provider calls of the payments service, for the
    /// creditor comuni in `comuni`.
    #[serde(rename = "payment_provider")]
    PaymentProvider,
}

/// The claims of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer, always [`ISSUER`].
    pub iss: String,
    /// Subject: an opaque user id.
    pub sub: String,
    /// The role.
    pub role: Role,
    /// ISTAT codes of the comuni the user acts for (operators, integrators).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comuni: Vec<String>,
    /// The citizen's codice fiscale (citizens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiscal_number: Option<String>,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not before, seconds since the epoch (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts of JSON.
    #[error("the token is malformed")]
    Malformed,
    /// The signature does not verify.
    #[error("the token signature is invalid")]
    BadSignature,
    /// Past `exp`.
    #[error("the token has expired")]
    Expired,
    /// Before `nbf` (beyond the allowed clock skew).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Another issuer or algorithm.
    #[error("the token was not issued by this federation")]
    WrongIssuer,
}

/// Signs tokens.
pub struct Signer {
    key: Ed25519KeyPair,
}

/// A signature algorithm a verifier accepts (the JWS `alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// Ed25519 (`EdDSA`).
    EdDsa,
    /// ECDSA on P-256 with SHA-256 (`ES256`).
    Es256,
}

impl Alg {
    fn from_header(alg: &str) -> Option<Self> {
        match alg {
            "EdDSA" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    fn ring(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Self::EdDsa => &ED25519,
            Self::Es256 => &ECDSA_P256_SHA256_FIXED,
        }
    }
}

/// One public key: its algorithm, its key id (`kid`) if any, and its bytes as ring reads them
/// (Ed25519: the 32-byte key; P-256: the uncompressed point `04 || x || y`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The algorithm.
    pub alg: Alg,
    /// The key id.
    pub kid: Option<String>,
    /// The key.
    pub bytes: Vec<u8>,
}

/// Seconds of clock skew allowed on `nbf`.
const LEEWAY_SECONDS: i64 = 60;

/// Verifies tokens.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<PublicKey>,
    issuers: Vec<String>,
}

/// Reads the public keys of a JWKS document (RFC 7517): `OKP` keys on `Ed25519` and `EC` keys
/// on `P-256`; keys for other uses (`"use": "enc"`) or other curves are an error, so a key
/// that was meant to be trusted is never silently left out.
pub fn parse_jwks(json: &str) -> anyhow::Result<Vec<PublicKey>> {
    #[derive(Deserialize)]
    struct Jwks {
        keys: Vec<Jwk>,
    }
    #[derive(Deserialize)]
    struct Jwk {
        kty: String,
        crv: Option<String>,
        x: Option<String>,
        y: Option<String>,
        kid: Option<String>,
        #[serde(rename = "use")]
        usage: Option<String>,
        alg: Option<String>,
    }
    let jwks: Jwks = serde_json::from_str(json).context("not a JWKS document")?;
    let coordinate = |value: &Option<String>, name: &str, kid: &str| -> anyhow::Result<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD
            .decode(value.as_deref().unwrap_or_default())
            .with_context(|| format!("key {kid}: `{name}` is not base64url"))?;
        anyhow::ensure!(bytes.len() == 32, "key {kid}: `{name}` is not 32 bytes");
        Ok(bytes)
    };
    jwks.keys
        .iter()
        .map(|k| {
            let kid = k.kid.clone().unwrap_or_else(|| "(no kid)".to_owned());
            anyhow::ensure!(
                k.usage.as_deref().is_none_or(|u| u == "sig"),
                "key {kid}: not a signing key"
            );
            let (alg, bytes) = match (k.kty.as_str(), k.crv.as_deref()) {
                ("OKP", Some("Ed25519")) => (Alg::EdDsa, coordinate(&k.x, "x", &kid)?),
                ("EC", Some("P-256")) => {
                    let mut point = vec![4];
                    point.extend(coordinate(&k.x, "x", &kid)?);
                    point.extend(coordinate(&k.y, "y", &kid)?);
                    (Alg::Es256, point)
                }
                (kty, crv) => anyhow::bail!(
                    "key {kid}: {kty} on {} is not accepted (Ed25519 OKP or P-256 EC keys only)",
                    crv.unwrap_or("no curve")
                ),
            };
            if let Some(declared) = &k.alg {
                anyhow::ensure!(
                    Alg::from_header(declared) == Some(alg),
                    "key {kid}: alg {declared} does not match its key type"
                );
            }
            Ok(PublicKey {
                alg,
                kid: k.kid.clone(),
                bytes,
            })
        })
        .collect()
}

const HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;

/// Creates the signing key `token.key` (PKCS#8) and `token.pub` (raw public key) in `dir`
/// unless they exist.
pub fn ensure_keys(dir: &Path) -> anyhow::Result<()> {
    let key_path = dir.join("token.key");
    if key_path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("key generation failed"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("bad generated key"))?;
    std::fs::write(&key_path, pkcs8.as_ref())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::write(dir.join("token.pub"), pair.public_key().as_ref())?;
    Ok(())
}

impl Signer {
    /// Loads `token.key` from `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(dir.join("token.key")).context("reading token.key")?;
        let key = Ed25519KeyPair::from_pkcs8(&bytes)
            .map_err(|_| anyhow::anyhow!("token.key is not an Ed25519 PKCS#8 key"))?;
        Ok(Self { key })
    }

    /// Signs claims.
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims are plain serializable values");
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }

    /// Issues a token valid for `days` days.
    pub fn issue(
        &self,
        sub: &str,
        role: Role,
        comuni: Vec<String>,
        fiscal_number: Option<String>,
        days: i64,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        self.sign(&Claims {
            iss: ISSUER.to_owned(),
            sub: sub.to_owned(),
            role,
            comuni,
            fiscal_number,
            iat: now,
            nbf: None,
            exp: now + days * 86_400,
        })
    }
}

impl Verifier {
    /// Loads the keys of `dir`: `token.pub` (the federation's own Ed25519 key, if present)
    /// and `jwks.json` (an identity provider's keys, if present); at least one key is needed.
    /// The issuer trusted is [`ISSUER`] until [`Verifier::trusting`] says otherwise.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        let own = dir.join("token.pub");
        if own.exists() {
            keys.push(PublicKey {
                alg: Alg::EdDsa,
                kid: None,
                bytes: std::fs::read(&own).context("reading token.pub")?,
            });
        }
        let jwks = dir.join("jwks.json");
        if jwks.exists() {
            let text = std::fs::read_to_string(&jwks).context("reading jwks.json")?;
            keys.extend(parse_jwks(&text).context("jwks.json")?);
        }
        anyhow::ensure!(
            !keys.is_empty(),
            "{} holds neither token.pub nor jwks.json",
            dir.display()
        );
        Ok(Self::from_keys(keys))
    }

    /// A verifier of `keys`, trusting the issuer [`ISSUER`].
    pub fn from_keys(keys: Vec<PublicKey>) -> Self {
        Self {
            keys,
            issuers: vec![ISSUER.to_owned()],
        }
    }

    /// Trusts exactly these issuers (`iss` claims), e.g. `unione` and an OpenID Connect
    /// provider's issuer URL.
    #[must_use]
    pub fn trusting(mut self, issuers: Vec<String>) -> Self {
        self.issuers = issuers;
        self
    }

    /// Verifies a token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| TokenError::Malformed)?;
        let header: serde_json::Value =
            serde_json::from_slice(&header).map_err(|_| TokenError::Malformed)?;
        // Only the algorithms configured: never `none`, never a MAC with a public key.
        let alg = header
            .get("alg")
            .and_then(|a| a.as_str())
            .and_then(Alg::from_header)
            .ok_or(TokenError::WrongIssuer)?;
        let kid = header.get("kid").and_then(|k| k.as_str());
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let signing_input =
            &token[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1];
        let verified = self
            .keys
            .iter()
            .filter(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
            .any(|k| {
                UnparsedPublicKey::new(alg.ring(), &k.bytes)
                    .verify(signing_input.as_bytes(), &signature)
                    .is_ok()
            });
        if !verified {
            return Err(TokenError::BadSignature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if !self.issuers.contains(&claims.iss) {
            return Err(TokenError::WrongIssuer);
        }
        let now = chrono::Utc::now().timestamp();
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECONDS) {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_tampering_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        ensure_keys(dir.path()).expect("keys");
        let signer = Signer::load(dir.path()).expect("signer");
        let verifier = Verifier::load(dir.path()).expect("verifier");
        let token = signer.issue("op-1", Role::Operator, vec!["011027".into()], None, 1);
        let claims = verifier.verify(&token).expect("valid");
        assert_eq!(claims.role, Role::Operator);
        assert_eq!(claims.comuni, vec!["011027".to_owned()]);

        // Changing the payload (another comune) breaks the signature.
        let forged_payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                comuni: vec!["011002".into()],
                ..claims.clone()
            })
            .expect("json"),
        );
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(verifier.verify(&forged), Err(TokenError::BadSignature));
        assert_eq!(verifier.verify("a.b"), Err(TokenError::Malformed));

        let expired = signer.sign(&Claims { exp: 1, ..claims });
        assert_eq!(verifier.verify(&expired), Err(TokenError::Expired));

        // Another federation's key does not verify.
        let other = tempfile::tempdir().expect("tempdir");
        ensure_keys(other.path()).expect("keys");
        let stranger = Verifier::load(other.path()).expect("verifier");
        assert_eq!(stranger.verify(&token), Err(TokenError::BadSignature));
    }

    /// An ES256 key pair, its JWKS entry and a signer of claims with it.
    struct Es256 {
        pair: ring::signature::EcdsaKeyPair,
        kid: String,
    }

    impl Es256 {
        fn new(kid: &str) -> Self {
            use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("P-256 key");
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .expect("P-256 pair");
            Self {
                pair,
                kid: kid.to_owned(),
            }
        }

        fn jwk(&self) -> serde_json::Value {
            let point = self.pair.public_key().as_ref();
            serde_json::json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            })
        }

        fn sign(&self, alg: &str, kid: &str, claims: &Claims) -> String {
            let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": kid});
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("json"))
            );
            let signature = self
                .pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .expect("signed");
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
        }
    }

    fn citizen(iss: &str) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: iss.to_owned(),
            sub: "spid-user-1".into(),
            role: Role::Citizen,
            comuni: Vec::new(),
            fiscal_number: Some("RSSMRA85T10E463U".into()),
            iat: now,
            nbf: Some(now),
            exp: now + 600,
        }
    }

    #[test]
    fn an_identity_providers_es256_keys_from_a_jwks_file_verify_its_tokens() {
        const IDP: &str = "https://idp.example.it";
        let dir = tempfile::tempdir().expect("tempdir");
        ensure_keys(dir.path()).expect("own keys");
        let idp = Es256::new("idp-2026");
        let rotated_out = Es256::new("idp-2025");
        let jwks = serde_json::json!({"keys": [idp.jwk()]});
        std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).expect("jwks");
        let verifier = Verifier::load(dir.path())
            .expect("own key and JWKS")
            .trusting(vec![ISSUER.to_owned(), IDP.to_owned()]);

        let token = idp.sign("ES256", "idp-2026", &citizen(IDP));
        let claims = verifier
            .verify(&token)
            .expect("the provider's token verifies");
        assert_eq!(claims.fiscal_number.as_deref(), Some("RSSMRA85T10E463U"));
        // The federation's own tokens still verify beside it.
        let own = Signer::load(dir.path()).expect("signer").issue(
            "op-1",
            Role::Operator,
            vec!["011027".into()],
            None,
            1,
        );
        assert!(verifier.verify(&own).is_ok());

        // A key not in the JWKS, an unknown kid, an issuer not trusted, `alg: none`, a MAC.
        let stranger = rotated_out.sign("ES256", "idp-2026", &citizen(IDP));
        assert_eq!(verifier.verify(&stranger), Err(TokenError::BadSignature));
        let unknown_kid = idp.sign("ES256", "idp-1999", &citizen(IDP));
        assert_eq!(verifier.verify(&unknown_kid), Err(TokenError::BadSignature));
        let other_issuer = idp.sign("ES256", "idp-2026", &citizen("https://evil.example"));
        assert_eq!(verifier.verify(&other_issuer), Err(TokenError::WrongIssuer));
        let parts: Vec<&str> = token.split('.').collect();
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(
            verifier.verify(&format!("{none_header}.{}.", parts[1])),
            Err(TokenError::WrongIssuer)
        );
        let hs256 = idp.sign("HS256", "idp-2026", &citizen(IDP));
        assert_eq!(verifier.verify(&hs256), Err(TokenError::WrongIssuer));
        // The same key under the other algorithm does not verify either.
        let as_eddsa = idp.sign("EdDSA", "idp-2026", &citizen(IDP));
        assert_eq!(verifier.verify(&as_eddsa), Err(TokenError::BadSignature));

        // Not valid yet (beyond a minute of skew), and expired.
        let later = Claims {
            nbf: Some(chrono::Utc::now().timestamp() + 3600),
            ..citizen(IDP)
        };
        let early = idp.sign("ES256", "idp-2026", &later);
        assert_eq!(verifier.verify(&early), Err(TokenError::NotYetValid));
        let expired = Claims {
            exp: chrono::Utc::now().timestamp() - 1,
            ..citizen(IDP)
        };
        let expired = idp.sign("ES256", "idp-2026", &expired);
        assert_eq!(verifier.verify(&expired), Err(TokenError::Expired));

        // By default only the federation's own issuer is trusted.
        let default = Verifier::load(dir.path()).expect("verifier");
        assert_eq!(default.verify(&token), Err(TokenError::WrongIssuer));
    }

    #[test]
    fn a_jwks_file_with_a_key_that_cannot_be_used_is_refused_whole() {
        let ok = Es256::new("a").jwk();
        let parse =
            |keys: serde_json::Value| parse_jwks(&serde_json::json!({ "keys": keys }).to_string());
        assert_eq!(
            parse(serde_json::json!([ok.clone()]))
                .expect("one key")
                .len(),
            1
        );
        let rsa = serde_json::json!({"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"});
        let err = parse(serde_json::json!([ok.clone(), rsa])).expect_err("RSA");
        assert!(err.to_string().contains("key r"), "{err}");
        let mut enc = ok.clone();
        enc["use"] = "enc".into();
        assert!(
            parse(serde_json::json!([enc])).is_err(),
            "an encryption key"
        );
        let mut short = ok.clone();
        short["x"] = "AAAA".into();
        assert!(
            parse(serde_json::json!([short])).is_err(),
            "a short coordinate"
        );
        let mut mislabelled = ok;
        mislabelled["alg"] = "EdDSA".into();
        assert!(
            parse(serde_json::json!([mislabelled])).is_err(),
            "alg against kty"
        );
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(Verifier::load(empty.path()).is_err(), "no key at all");
    }
}
