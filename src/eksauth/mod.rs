//! EKS Auth: what AssumeRoleForPodIdentity needs besides HTTP and the store.
//!
//! The credential path: a pod's projected service-account token (`token`)
//! is checked against the issuers its cluster trusts (`keys`: the cluster's
//! own signing key and any registered external issuer); the association for
//! the token's namespace and service account becomes a `RoleRequest`
//! (`session`); a credential provider (`CredentialSource`, chosen by
//! `eks_auth.credentials`) answers it with temporary credentials.

pub mod grant;
pub mod issuer;
pub mod keys;
pub mod local;
pub mod provider;
pub mod session;
pub mod token;

pub use grant::CredentialGrant;
pub use issuer::{ClusterIssuer, ClusterIssuers, ExternalIssuer};
pub use keys::{SigningKey, TrustedIssuer, VerifyingKey};
pub use local::LocalProvider;
pub use provider::{IssuedCredentials, ProviderError, RoleRequest};
pub use token::{TokenRequest, VerifiedToken, POD_IDENTITY_AUDIENCE};

use crate::config::{CredentialsKind, EksAuthConfig};
use crate::domain::Timestamp;

/// Why a token was refused, in the three kinds the EKS Auth model tells
/// apart; the message says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not the Model's JWT shape, or a bad parameter: InvalidParameterException.
    #[error("{0}")]
    Malformed(String),
    /// Signature, issuer, audience or claims wrong: InvalidTokenException.
    #[error("{0}")]
    Invalid(String),
    /// Past its `exp` (and the leeway): ExpiredTokenException.
    #[error("{0}")]
    Expired(String),
}

/// The credential provider `eks_auth.credentials` chose.
#[derive(Debug)]
pub enum CredentialSource {
    /// `"local"`: minted by this server.
    Local(LocalProvider),
}

impl CredentialSource {
    pub fn from_config(config: &EksAuthConfig) -> Result<CredentialSource, String> {
        match config.credentials {
            CredentialsKind::Local => Ok(CredentialSource::Local(LocalProvider)),
            CredentialsKind::Sts => Err(
                "eks_auth.credentials = \"sts\" is not available in this build; use \"local\"."
                    .into(),
            ),
        }
    }

    /// Answers `request` with credentials, at `now`.
    pub async fn issue(
        &self,
        request: &RoleRequest,
        now: Timestamp,
    ) -> Result<IssuedCredentials, ProviderError> {
        match self {
            CredentialSource::Local(local) => local.issue(request, now),
        }
    }

    /// The provider's name as the config spells it, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            CredentialSource::Local(_) => "local",
        }
    }
}
