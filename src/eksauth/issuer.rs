//! What the store keeps of a cluster's issuers, and the verifiers made of it.

use super::keys::{self, KeyError, SigningKey, TrustedIssuer};

/// A cluster's token issuer: its own signing key and ID, and the external
/// issuer registered for it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterIssuer {
    /// The last part of the issuer URL (`{public_url}/id/{id}`).
    pub id: String,
    /// The RS256 private key, PKCS#1 DER.
    pub signing_key: Vec<u8>,
    pub external: Option<ExternalIssuer>,
}

/// An external issuer as registered: its `iss` and its JWKS, kept as sent so
/// that it reads back the same after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIssuer {
    pub issuer: String,
    pub jwks: String,
}

impl ClusterIssuer {
    /// A new issuer with a new key. Generating an RSA key takes a while
    /// (tens of milliseconds): call it off the async executor.
    pub fn generate() -> Result<ClusterIssuer, KeyError> {
        Ok(ClusterIssuer {
            id: keys::new_issuer_id(),
            signing_key: SigningKey::generate()?.private_pkcs1_der().to_vec(),
            external: None,
        })
    }

    pub fn url(&self, public_url: &str) -> String {
        keys::issuer_url(public_url, &self.id)
    }
}

/// A cluster's issuers, read once: what signs its tokens and what checks them.
pub struct ClusterIssuers {
    pub url: String,
    pub signing_key: SigningKey,
    /// The cluster's own issuer first, then the external one.
    pub trusted: Vec<TrustedIssuer>,
}

impl ClusterIssuers {
    pub fn new(issuer: &ClusterIssuer, public_url: &str) -> Result<ClusterIssuers, KeyError> {
        let signing_key = SigningKey::from_pkcs1_der(&issuer.signing_key)?;
        let url = issuer.url(public_url);
        let mut trusted = vec![TrustedIssuer {
            issuer: url.clone(),
            path: Some(keys::issuer_path(&issuer.id)),
            keys: vec![signing_key.verifying_key()],
        }];
        if let Some(external) = &issuer.external {
            match keys::external_issuer(&external.issuer, &external.jwks) {
                Ok(issuer) => trusted.push(issuer),
                // It was checked when registered; a JWKS this build reads
                // differently must not stop the cluster's own tokens.
                Err(e) => log::warn!("external issuer {} skipped: {e}", external.issuer),
            }
        }
        Ok(ClusterIssuers {
            url,
            signing_key,
            trusted,
        })
    }
}
