//! Token issuers: a cluster's own RS256 signing key, the keys of an external
//! issuer read from its JWKS, and the JWKS and OpenID discovery documents a
//! cluster's issuer publishes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::TokenError;

/// RSA modulus size of a cluster's signing key: what Kubernetes' own
/// service-account keys and EKS's issuers use.
const RSA_BITS: usize = 2048;

/// Why a key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot generate an RSA key: {0}")]
    Generate(String),
    #[error("stored signing key is not a PKCS#1 RSA private key: {0}")]
    Decode(String),
}

/// A key that can check a token's signature.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The JWKS `kid`; a token's header `kid` picks the key when both have one.
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// An issuer whose tokens a cluster accepts: its `iss` and its keys.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    pub issuer: String,
    /// A cluster's own issuer also accepts an `iss` that ends with its
    /// `/id/{ID}` under another base URL: the server reached by another name
    /// (localhost, a proxy) or started on another port still knows its own
    /// tokens, whose signature decides anyway.
    pub path: Option<String>,
    pub keys: Vec<VerifyingKey>,
}

impl TrustedIssuer {
    pub fn accepts(&self, iss: &str) -> bool {
        iss == self.issuer
            || self.path.as_deref().is_some_and(|path| {
                iss.strip_suffix(path)
                    .is_some_and(|base| base.starts_with("http://") || base.starts_with("https://"))
            })
    }
}

/// A cluster's own signing key pair (RS256).
pub struct SigningKey {
    private_pkcs1_der: Vec<u8>,
    kid: String,
    /// Modulus and exponent, base64url as the JWKS carries them.
    n: String,
    e: String,
    encoding: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new 2048-bit key from the operating system's random source.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let private = rsa::PrivateKey::new(&mut getrandom::SysRng, RSA_BITS)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        let der = private
            .to_pkcs1_der()
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        Self::from_private(&private, der.as_bytes().to_vec())
    }

    /// The key as stored: its PKCS#1 DER private key.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        let private =
            rsa::PrivateKey::from_pkcs1_der(der).map_err(|e| KeyError::Decode(e.to_string()))?;
        Self::from_private(&private, der.to_vec())
    }

    fn from_private(
        private: &rsa::PrivateKey,
        private_pkcs1_der: Vec<u8>,
    ) -> Result<SigningKey, KeyError> {
        let public = private.to_public_key();
        // The kid is the SHA-256 of the public key's DER, as Kubernetes
        // derives its own: stable for a key, different between keys.
        let public_der = public
            .to_pkcs1_der()
            .map_err(|e| KeyError::Decode(e.to_string()))?;
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(public_der.as_bytes()));
        let n = URL_SAFE_NO_PAD.encode(public.n_bytes());
        let e = URL_SAFE_NO_PAD.encode(public.e_bytes());
        let encoding = EncodingKey::from_rsa_der(&private_pkcs1_der);
        Ok(SigningKey {
            private_pkcs1_der,
            kid,
            n,
            e,
            encoding,
        })
    }

    pub fn private_pkcs1_der(&self) -> &[u8] {
        &self.private_pkcs1_der
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The public half as a JWK.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": self.n,
            "e": self.e,
        })
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            kid: Some(self.kid.clone()),
            algorithm: Algorithm::RS256,
            key: DecodingKey::from_rsa_components(&self.n, &self.e)
                .expect("a key's own base64url components always decode"),
        }
    }
}

/// A cluster's issuer URL: `{public_url}/id/{issuer_id}`, the shape of
/// EKS's `https://oidc.eks.REGION.amazonaws.com/id/ID`.
pub fn issuer_url(public_url: &str, issuer_id: &str) -> String {
    format!(
        "{}{}",
        public_url.trim_end_matches('/'),
        issuer_path(issuer_id)
    )
}

/// The path of a cluster's issuer under the server's base URL.
pub fn issuer_path(issuer_id: &str) -> String {
    format!("/id/{issuer_id}")
}

/// A new issuer ID: 32 upper-case hex digits, as EKS's are.
pub fn new_issuer_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// `{issuer}/.well-known/openid-configuration`, as EKS publishes it.
pub fn openid_configuration(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/keys"),
        "authorization_endpoint": "urn:kubernetes:programmatic_authorization",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "claims_supported": ["sub", "iss"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// The JWKS document of one or more signing keys.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

/// An external issuer (a real kind or k3s cluster's), as registered with
/// `PUT /admin/v1/clusters/{name}/service-account-issuer`.
///
/// # Limits
/// RS256 and ES256 keys only (what Kubernetes API servers sign with); a JWKS
/// key for encryption (`"use": "enc"`) or of another kind is skipped, and a
/// JWKS with no usable key is refused.
pub fn external_issuer(issuer: &str, jwks_json: &str) -> Result<TrustedIssuer, TokenError> {
    let shown = crate::domain::shown(issuer);
    if !(issuer.starts_with("https://") || issuer.starts_with("http://"))
        || issuer.len() > 2048
        || issuer.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(TokenError::Malformed(format!(
            "issuer {shown} is not an issuer URL; use the `iss` of the cluster's tokens, an \
             http:// or https:// URL such as https://kubernetes.default.svc."
        )));
    }
    let set: JwkSet = serde_json::from_str(jwks_json).map_err(|e| {
        TokenError::Malformed(format!(
            "jwks is not a JSON Web Key Set ({e}); use the document the cluster serves at \
             /openid/v1/jwks: {{\"keys\": [...]}}."
        ))
    })?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
            (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                if ec.curve == EllipticCurve::P256 =>
            {
                Algorithm::ES256
            }
            _ => continue,
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| {
            TokenError::Malformed(format!(
                "jwks key {} cannot be read: {e}; check its n/e (RSA) or x/y (EC P-256) members.",
                jwk.common.key_id.as_deref().unwrap_or("without kid")
            ))
        })?;
        keys.push(VerifyingKey {
            kid: jwk.common.key_id.clone(),
            algorithm,
            key,
        });
    }
    if keys.is_empty() {
        return Err(TokenError::Malformed(
            "jwks has no RS256 or ES256 (P-256) signing key; register the key set the cluster's \
             API server signs service-account tokens with."
                .into(),
        ));
    }
    Ok(TrustedIssuer {
        issuer: issuer.to_owned(),
        path: None,
        keys,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::OnceLock;

    use super::*;

    /// One key for all the unit tests: generating one takes a moment.
    pub(crate) fn test_key() -> &'static SigningKey {
        static KEY: OnceLock<SigningKey> = OnceLock::new();
        KEY.get_or_init(|| SigningKey::generate().unwrap())
    }

    #[test]
    fn a_signing_key_reads_back_from_its_stored_bytes_with_the_same_kid() {
        let key = test_key();
        let again = SigningKey::from_pkcs1_der(key.private_pkcs1_der()).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.jwk(), key.jwk());
        assert!(SigningKey::from_pkcs1_der(b"not a key").is_err());
    }

    #[test]
    fn the_jwks_names_an_rs256_signing_key_with_its_kid() {
        let key = test_key();
        let doc = jwks(&[key]);
        let jwk = &doc["keys"][0];
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(jwk["e"], "AQAB");
        // A 2048-bit modulus is 256 bytes: 342 base64url characters.
        assert_eq!(jwk["n"].as_str().unwrap().len(), 342);
    }

    #[test]
    fn the_openid_configuration_points_at_the_issuers_keys() {
        let doc = openid_configuration("http://127.0.0.1:1/id/ABC");
        assert_eq!(doc["issuer"], "http://127.0.0.1:1/id/ABC");
        assert_eq!(doc["jwks_uri"], "http://127.0.0.1:1/id/ABC/keys");
        assert_eq!(doc["id_token_signing_alg_values_supported"][0], "RS256");
    }

    #[test]
    fn issuer_ids_are_32_upper_case_hex_digits_and_urls_hang_under_the_public_url() {
        let id = new_issuer_id();
        assert_eq!(id.len(), 32);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        assert_ne!(id, new_issuer_id());
        assert_eq!(
            issuer_url("http://h:1/", "AB"),
            "http://h:1/id/AB".to_owned()
        );
    }

    #[test]
    fn an_external_jwks_yields_its_rsa_and_p256_keys_and_skips_others() {
        let key = test_key();
        let doc = json!({"keys": [
            key.jwk(),
            {"kty": "EC", "crv": "P-256", "kid": "ec1",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "k": "c2VjcmV0"},
        ]});
        let issuer = external_issuer("https://kind.example", &doc.to_string()).unwrap();
        let algs: Vec<_> = issuer.keys.iter().map(|k| k.algorithm).collect();
        assert_eq!(algs, [Algorithm::RS256, Algorithm::ES256]);
        assert_eq!(issuer.keys[1].kid.as_deref(), Some("ec1"));
    }

    #[test]
    fn an_external_issuer_needs_a_url_and_a_usable_key() {
        let jwks = jwks(&[test_key()]).to_string();
        for bad in ["", "kind", "ftp://x", "https://a b"] {
            let err = external_issuer(bad, &jwks).unwrap_err().to_string();
            assert!(err.contains("issuer"), "{err}");
        }
        let err = external_issuer("https://x", "{}").unwrap_err().to_string();
        assert!(err.contains("jwks"), "{err}");
        let err = external_issuer("https://x", r#"{"keys": []}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no RS256 or ES256"), "{err}");
    }
}
