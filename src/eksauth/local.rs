//! The `local` credential provider: the server mints well-formed temporary
//! credentials itself, in the formats STS uses, for a testbed without AWS.
//!
//! # Limits
//! The credentials authenticate nowhere: no AWS service knows them. The
//! session token is random bytes, not an STS token that encodes the session.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};

use super::provider::{IssuedCredentials, ProviderError, RoleRequest};
use crate::domain::Timestamp;

/// Mints credentials without calling anything.
#[derive(Debug, Clone, Default)]
pub struct LocalProvider;

/// Characters of an access key ID after `ASIA` (STS's temporary keys).
const ACCESS_KEY_SUFFIX: usize = 16;
/// Characters of a secret access key.
const SECRET_LENGTH: usize = 40;
/// Random bytes behind a session token; STS's own tokens are a few hundred
/// characters, which clients must accept, so a long one tests them honestly.
const SESSION_TOKEN_BYTES: usize = 192;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes
}

impl LocalProvider {
    pub fn issue(
        &self,
        request: &RoleRequest,
        now: Timestamp,
    ) -> Result<IssuedCredentials, ProviderError> {
        // Chained: the caller gets the target role's credentials.
        let role = request
            .target_role_arn
            .as_deref()
            .unwrap_or(&request.role_arn);
        let assumed_role_arn = assumed_role_arn(role, &request.session_name)?;
        // base32 of 10 random bytes is exactly 16 characters of [A-Z2-7].
        let access_key_id = format!("ASIA{}", BASE32_NOPAD.encode(&random_bytes::<10>()));
        debug_assert_eq!(access_key_id.len(), 4 + ACCESS_KEY_SUFFIX);
        // base64 of 30 random bytes is exactly 40 characters, as AWS's are.
        let secret_access_key = STANDARD.encode(random_bytes::<30>());
        debug_assert_eq!(secret_access_key.len(), SECRET_LENGTH);
        let session_token = STANDARD.encode(random_bytes::<SESSION_TOKEN_BYTES>());
        Ok(IssuedCredentials {
            access_key_id,
            secret_access_key,
            session_token,
            expiration: now.plus_seconds(u64::from(request.duration_seconds)),
            assumed_role_id: format!("{}:{}", role_id(role), request.session_name),
            assumed_role_arn,
        })
    }
}

/// `arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE-NAME/SESSION` of a role ARN
/// `arn:PARTITION:iam::ACCOUNT:role/PATH/ROLE-NAME`: STS leaves out the path.
pub fn assumed_role_arn(role_arn: &str, session_name: &str) -> Result<String, ProviderError> {
    let parts: Vec<&str> = role_arn.splitn(6, ':').collect();
    match parts[..] {
        ["arn", partition, "iam", "", account, resource] if resource.starts_with("role/") => {
            let name = resource.rsplit('/').next().unwrap_or_default();
            Ok(format!(
                "arn:{partition}:sts::{account}:assumed-role/{name}/{session_name}"
            ))
        }
        _ => Err(ProviderError::Refused(format!(
            "{} is not an IAM role ARN; the association's role must be \
             arn:PARTITION:iam::ACCOUNT:role/NAME.",
            crate::domain::shown(role_arn)
        ))),
    }
}

/// A role's unique ID as IAM shows it (`AROA` + 17 characters). There is no
/// IAM here to ask, so it is derived from the role ARN: stable for a role,
/// different between roles.
pub fn role_id(role_arn: &str) -> String {
    let digest = Sha256::digest(role_arn.as_bytes());
    let encoded = BASE32_NOPAD.encode(&digest);
    format!("AROA{}", &encoded[..17])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RoleRequest {
        RoleRequest {
            role_arn: "arn:aws:iam::123456789012:role/app/r1".into(),
            target_role_arn: None,
            external_id: None,
            session_name: "eks-c1-app-6f1c2a8e".into(),
            session_tags: Vec::new(),
            transitive_tag_keys: Vec::new(),
            policy: None,
            duration_seconds: 3600,
        }
    }

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    #[test]
    fn minted_credentials_have_the_formats_sts_uses() {
        let c = LocalProvider.issue(&request(), NOW).unwrap();
        assert_eq!(c.access_key_id.len(), 20);
        assert!(c.access_key_id.starts_with("ASIA"));
        assert!(c.access_key_id[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(c.secret_access_key.len(), 40);
        assert!(c.session_token.len() > 200);
        assert_eq!(c.expiration, NOW.plus_seconds(3600));
    }

    #[test]
    fn every_call_mints_new_keys() {
        let a = LocalProvider.issue(&request(), NOW).unwrap();
        let b = LocalProvider.issue(&request(), NOW).unwrap();
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_ne!(a.secret_access_key, b.secret_access_key);
        assert_ne!(a.session_token, b.session_token);
    }

    #[test]
    fn the_assumed_role_is_the_role_without_its_path_and_the_session_name() {
        let c = LocalProvider.issue(&request(), NOW).unwrap();
        assert_eq!(
            c.assumed_role_arn,
            "arn:aws:sts::123456789012:assumed-role/r1/eks-c1-app-6f1c2a8e"
        );
        let (id, session) = c.assumed_role_id.split_once(':').unwrap();
        assert_eq!(session, "eks-c1-app-6f1c2a8e");
        assert_eq!(id, role_id("arn:aws:iam::123456789012:role/app/r1"));
    }

    #[test]
    fn a_chained_request_answers_for_the_target_role_in_its_own_account() {
        let chained = RoleRequest {
            target_role_arn: Some("arn:aws-cn:iam::111122223333:role/target".into()),
            external_id: Some("ext".into()),
            ..request()
        };
        let c = LocalProvider.issue(&chained, NOW).unwrap();
        assert_eq!(
            c.assumed_role_arn,
            "arn:aws-cn:sts::111122223333:assumed-role/target/eks-c1-app-6f1c2a8e"
        );
        assert!(c
            .assumed_role_id
            .starts_with(&role_id("arn:aws-cn:iam::111122223333:role/target")));
    }

    #[test]
    fn role_ids_are_aroa_and_17_base32_characters_stable_per_role() {
        let id = role_id("arn:aws:iam::123456789012:role/r1");
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AROA"));
        assert!(id[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(id, role_id("arn:aws:iam::123456789012:role/r1"));
        assert_ne!(id, role_id("arn:aws:iam::123456789012:role/r2"));
    }

    #[test]
    fn a_role_that_is_not_an_iam_role_arn_is_refused() {
        let bad = RoleRequest {
            role_arn: "arn:aws:iam::123456789012:user/u".into(),
            ..request()
        };
        assert!(matches!(
            LocalProvider.issue(&bad, NOW),
            Err(ProviderError::Refused(_))
        ));
    }
}
