//! Validated names. A value of one of these types has passed its rule, so the
//! layers below never see an invalid name.
//!
//! The Model constrains only CreateCluster's `name`; the other rules are the
//! Kubernetes ones (namespaces are DNS labels, service accounts DNS
//! subdomains) and the association ID format every EKS example shows.

use std::collections::BTreeMap;
use std::fmt;

use super::DomainError;

fn invalid(message: String) -> DomainError {
    DomainError::InvalidParameter(message)
}

macro_rules! string_newtype {
    ($name:ident, stored) => {
        string_newtype!($name);

        impl $name {
            /// A value the store wrote, which was parsed before it was
            /// stored: trusted, not checked again on every read.
            pub(crate) fn from_stored(value: String) -> Self {
                $name(value)
            }
        }
    };
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// An EKS cluster name: 1–100 characters, letters, digits, `-` and `_`,
/// starting with a letter or digit (Model shape `ClusterName`).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ClusterName(String);
string_newtype!(ClusterName, stored);

impl ClusterName {
    pub fn parse(member: &str, value: &str) -> Result<Self, DomainError> {
        let mut chars = value.chars();
        let starts_well = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if value.is_empty() || value.len() > 100 || !starts_well || !rest_ok {
            return Err(invalid(format!(
                "{member} {value} is not a valid cluster name: it must be 1 to 100 characters of \
                 letters, digits, '-' and '_', starting with a letter or digit.",
                value = crate::domain::shown(value)
            )));
        }
        Ok(ClusterName(value.to_owned()))
    }
}

/// True for a Kubernetes DNS label body: lowercase alphanumerics and `-`,
/// starting and ending with an alphanumeric.
fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && alnum(&bytes[0])
        && alnum(&bytes[bytes.len() - 1])
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

/// A Kubernetes namespace name: an RFC 1123 DNS label of at most 63 characters.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Namespace(String);
string_newtype!(Namespace, stored);

impl Namespace {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        if value.len() > 63 || !is_dns_label(value) {
            return Err(invalid(format!(
                "namespace {value} is not a valid Kubernetes namespace name: it must be 1 to 63 \
                 characters of lowercase letters, digits and '-', starting and ending with a \
                 letter or digit.",
                value = crate::domain::shown(value)
            )));
        }
        Ok(Namespace(value.to_owned()))
    }
}

/// A Kubernetes service account name: an RFC 1123 DNS subdomain of at most
/// 253 characters (dot-separated DNS labels).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ServiceAccountName(String);
string_newtype!(ServiceAccountName, stored);

impl ServiceAccountName {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        if value.len() > 253 || !value.split('.').all(is_dns_label) {
            return Err(invalid(format!(
                "serviceAccount {value} is not a valid Kubernetes service account name: it must \
                 be 1 to 253 characters of lowercase letters, digits, '-' and '.', each \
                 dot-separated part starting and ending with a letter or digit.",
                value = crate::domain::shown(value)
            )));
        }
        Ok(ServiceAccountName(value.to_owned()))
    }
}

/// A pod identity association ID: `a-` and 17 lowercase letters or digits.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct AssociationId(String);
string_newtype!(AssociationId, stored);

const ID_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ID_RANDOM_CHARS: usize = 17;

impl AssociationId {
    pub const LEN: usize = 2 + ID_RANDOM_CHARS;

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        if value.chars().count() != Self::LEN {
            // The real service's own words (spec §4.16).
            return Err(invalid(format!(
                "The parameter associationId should be {} characters long (got {value}).",
                Self::LEN,
                value = crate::domain::shown(value)
            )));
        }
        let well_formed = value.starts_with("a-")
            && value
                .bytes()
                .skip(2)
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !well_formed {
            return Err(invalid(format!(
                "The parameter associationId {value} is malformed: it must be 'a-' followed by \
                 17 lowercase letters or digits, as returned by CreatePodIdentityAssociation.",
                value = crate::domain::shown(value)
            )));
        }
        Ok(AssociationId(value.to_owned()))
    }

    /// A fresh random ID. 17 base-36 digits carry about 88 bits, drawn from
    /// the 122 random bits of a v4 UUID.
    pub fn generate() -> Self {
        let mut bits = uuid::Uuid::new_v4().as_u128();
        let mut id = String::with_capacity(Self::LEN);
        id.push_str("a-");
        for _ in 0..ID_RANDOM_CHARS {
            id.push(ID_ALPHABET[(bits % 36) as usize] as char);
            bits /= 36;
        }
        AssociationId(id)
    }
}

/// A caller's `clientRequestToken`. The Model puts no rule on it and tools
/// send their own formats, so any non-empty string up to 512 characters is taken.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientRequestToken(String);
string_newtype!(ClientRequestToken);

impl ClientRequestToken {
    pub const MAX_CHARS: usize = 512;

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let chars = value.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS {
            return Err(invalid(format!(
                "clientRequestToken must be 1 to {} characters long (got {chars}); omit it to \
                 let the server treat the request as new.",
                Self::MAX_CHARS
            )));
        }
        Ok(ClientRequestToken(value.to_owned()))
    }
}

/// A validated tag set (Model `TagMap`, and the documented tag rules).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tags(BTreeMap<String, String>);

impl Tags {
    /// Tags the store wrote, which were parsed before they were stored.
    pub(crate) fn from_stored(tags: BTreeMap<String, String>) -> Self {
        Tags(tags)
    }

    pub const MAX_TAGS: usize = 50;
    pub const MAX_KEY_CHARS: usize = 128;
    pub const MAX_VALUE_CHARS: usize = 256;

    pub fn parse(member: &str, tags: BTreeMap<String, String>) -> Result<Self, DomainError> {
        if tags.len() > Self::MAX_TAGS {
            return Err(invalid(format!(
                "{member} has {} tags; a resource can have at most {} tags.",
                tags.len(),
                Self::MAX_TAGS
            )));
        }
        for (key, value) in &tags {
            Self::check_key(member, key)?;
            let value_chars = value.chars().count();
            if value_chars > Self::MAX_VALUE_CHARS {
                return Err(invalid(format!(
                    "{member}: the value of tag '{key}' is {value_chars} characters long; tag \
                     values can be at most {} characters.",
                    Self::MAX_VALUE_CHARS
                )));
            }
        }
        Ok(Tags(tags))
    }

    pub fn check_key(member: &str, key: &str) -> Result<(), DomainError> {
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > Self::MAX_KEY_CHARS {
            return Err(invalid(format!(
                "{member}: tag key '{key}' is {key_chars} characters long; tag keys must be 1 to \
                 {} characters.",
                Self::MAX_KEY_CHARS
            )));
        }
        if key
            .get(..4)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("aws:"))
        {
            return Err(invalid(format!(
                "{member}: tag key '{key}' uses the prefix 'aws:', which is reserved for AWS; \
                 choose another key."
            )));
        }
        Ok(())
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// These tags with `added` merged in (TagResource): a key already present
    /// takes the new value; at most 50 tags in all.
    pub fn merged(&self, added: &Tags) -> Result<Tags, DomainError> {
        let mut merged = self.0.clone();
        merged.extend(added.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        if merged.len() > Self::MAX_TAGS {
            return Err(invalid(format!(
                "the resource has {} tags and the request adds {} new ones; a resource can have at \
                 most {} tags. Remove tags with UntagResource first.",
                self.0.len(),
                merged.len() - self.0.len(),
                Self::MAX_TAGS
            )));
        }
        Ok(Tags(merged))
    }

    /// These tags without `keys` (UntagResource); absent keys are ignored.
    pub fn without(&self, keys: &[String]) -> Tags {
        let mut left = self.0.clone();
        for key in keys {
            left.remove(key);
        }
        Tags(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_name_starts_with_a_letter_or_digit_and_has_at_most_100_characters() {
        assert!(ClusterName::parse("name", "prod-1_a").is_ok());
        assert!(ClusterName::parse("name", "9lives").is_ok());
        assert!(ClusterName::parse("name", &"a".repeat(100)).is_ok());
        assert!(ClusterName::parse("name", &"a".repeat(101)).is_err());
        assert!(ClusterName::parse("name", "").is_err());
        assert!(ClusterName::parse("name", "-prod").is_err());
        assert!(ClusterName::parse("name", "prod.1").is_err());
        assert!(ClusterName::parse("name", "pröd").is_err());
    }

    #[test]
    fn a_namespace_is_a_dns_label() {
        assert!(Namespace::parse("default").is_ok());
        assert!(Namespace::parse("kube-system").is_ok());
        assert!(Namespace::parse(&"a".repeat(63)).is_ok());
        assert!(Namespace::parse(&"a".repeat(64)).is_err());
        assert!(Namespace::parse("").is_err());
        assert!(Namespace::parse("Default").is_err());
        assert!(Namespace::parse("-ns").is_err());
        assert!(Namespace::parse("ns-").is_err());
        assert!(Namespace::parse("a.b").is_err());
    }

    #[test]
    fn a_service_account_is_a_dns_subdomain() {
        assert!(ServiceAccountName::parse("default").is_ok());
        assert!(ServiceAccountName::parse("my.app-sa").is_ok());
        assert!(
            ServiceAccountName::parse(&format!("{}.{}", "a".repeat(126), "b".repeat(126))).is_ok()
        );
        assert!(ServiceAccountName::parse(&"a".repeat(254)).is_err());
        assert!(ServiceAccountName::parse("").is_err());
        assert!(ServiceAccountName::parse("a..b").is_err());
        assert!(ServiceAccountName::parse(".a").is_err());
        assert!(ServiceAccountName::parse("My-SA").is_err());
    }

    #[test]
    fn an_association_id_is_a_dash_and_17_lowercase_alphanumerics() {
        assert!(AssociationId::parse("a-8mvwvh57cu74mgcst").is_ok());
        let short = AssociationId::parse("a-123").unwrap_err().to_string();
        assert!(short.contains("should be 19 characters long"), "{short}");
        assert!(AssociationId::parse("a-8MVWVH57CU74MGCST").is_err());
        assert!(AssociationId::parse("b-8mvwvh57cu74mgcst").is_err());
    }

    #[test]
    fn generated_association_ids_parse_and_differ() {
        let a = AssociationId::generate();
        let b = AssociationId::generate();
        assert_eq!(AssociationId::parse(a.as_str()).unwrap(), a);
        assert_ne!(a, b);
    }

    #[test]
    fn a_client_request_token_is_1_to_512_characters() {
        assert!(ClientRequestToken::parse("terraform-20231204133852182800000001").is_ok());
        assert!(ClientRequestToken::parse(&"t".repeat(512)).is_ok());
        assert!(ClientRequestToken::parse(&"t".repeat(513)).is_err());
        assert!(ClientRequestToken::parse("").is_err());
    }

    #[test]
    fn tags_follow_the_model_limits_and_refuse_the_aws_prefix() {
        let tags = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(Tags::parse("tags", tags(&[("team", "")])).is_ok());
        assert!(Tags::parse("tags", tags(&[("", "v")])).is_err());
        assert!(Tags::parse("tags", tags(&[(&"k".repeat(129), "v")])).is_err());
        assert!(Tags::parse("tags", tags(&[("k", &"v".repeat(257))])).is_err());
        assert!(Tags::parse("tags", tags(&[("AWS:owner", "v")])).is_err());
        let fifty_one = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(Tags::parse("tags", fifty_one).is_err());
    }

    #[test]
    fn merging_tags_overwrites_values_and_keeps_at_most_50() {
        let tags = |range: std::ops::Range<i32>, v: &str| {
            Tags::parse(
                "tags",
                range.map(|i| (format!("k{i}"), v.to_string())).collect(),
            )
            .unwrap()
        };
        let merged = tags(0..30, "old").merged(&tags(20..50, "new")).unwrap();
        assert_eq!(merged.as_map().len(), 50);
        assert_eq!(merged.as_map()["k0"], "old");
        assert_eq!(merged.as_map()["k20"], "new");
        assert!(merged.merged(&tags(50..51, "x")).is_err());
        let left = merged.without(&["k0".to_string(), "missing".to_string()]);
        assert_eq!(left.as_map().len(), 49);
    }
}
