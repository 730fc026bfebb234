//! User tokens: compact JWTs signed with Ed25519 (`alg: EdDSA`), so any language can verify
//! them with the federation's public key. The end user travels with a call as a principal
//! separate from the calling organisation (DOMAIN.md, Federation).

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
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
    /// Another issuer or algorithm.
    #[error("the token was not issued by this federation")]
    WrongIssuer,
}

/// Signs tokens.
pub struct Signer {
    key: Ed25519KeyPair,
}

/// Verifies tokens.
#[derive(Clone)]
pub struct Verifier {
    public: Vec<u8>,
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
            exp: now + days * 86_400,
        })
    }
}

impl Verifier {
    /// Loads `token.pub` from `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let public = std::fs::read(dir.join("token.pub")).context("reading token.pub")?;
        Ok(Self { public })
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
        if header.get("alg").and_then(|a| a.as_str()) != Some("EdDSA") {
            return Err(TokenError::WrongIssuer);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let signing_input =
            &token[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1];
        UnparsedPublicKey::new(&ED25519, &self.public)
            .verify(signing_input.as_bytes(), &signature)
            .map_err(|_| TokenError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.iss != ISSUER {
            return Err(TokenError::WrongIssuer);
        }
        if claims.exp <= chrono::Utc::now().timestamp() {
            return Err(TokenError::Expired);
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
}
