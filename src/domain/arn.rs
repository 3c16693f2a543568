//! ARNs: the server's own identity (partition, region, account) and the one
//! place where EKS ARNs are formatted and IAM role ARNs are checked.

use std::fmt;

use super::{AssociationId, ClusterName, DomainError};

/// The AWS partition a region belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    Aws,
    AwsCn,
    AwsUsGov,
}

impl Partition {
    pub fn of_region(region: &str) -> Partition {
        if region.starts_with("cn-") {
            Partition::AwsCn
        } else if region.starts_with("us-gov-") {
            Partition::AwsUsGov
        } else {
            Partition::Aws
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
        }
    }
}

/// Who this server pretends to be: one account in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsIdentity {
    pub partition: Partition,
    pub region: String,
    pub account_id: String,
}

impl AwsIdentity {
    pub fn new(region: &str, account_id: &str) -> Self {
        AwsIdentity {
            partition: Partition::of_region(region),
            region: region.to_owned(),
            account_id: account_id.to_owned(),
        }
    }

    fn eks_arn(&self, resource: fmt::Arguments<'_>) -> String {
        format!(
            "arn:{}:eks:{}:{}:{}",
            self.partition.as_str(),
            self.region,
            self.account_id,
            resource
        )
    }

    pub fn cluster_arn(&self, cluster: &ClusterName) -> String {
        self.eks_arn(format_args!("cluster/{cluster}"))
    }

    pub fn association_arn(&self, cluster: &ClusterName, id: &AssociationId) -> String {
        self.eks_arn(format_args!("podidentityassociation/{cluster}/{id}"))
    }
}

/// A resource the Tag APIs can name: a cluster or a pod identity association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaggableResource {
    Cluster(ClusterName),
    Association(ClusterName, AssociationId),
}

impl TaggableResource {
    /// Parses `resourceArn`. Only this server's partition, region and account
    /// hold resources; any other ARN is refused as a bad request.
    pub fn parse(value: &str, identity: &AwsIdentity) -> Result<Self, DomainError> {
        let invalid = |rule: String| {
            DomainError::InvalidParameter(format!(
                "resourceArn {value} {rule}. Use the arn of a cluster \
                 (arn:{p}:eks:{r}:{a}:cluster/NAME) or of a pod identity association \
                 (arn:{p}:eks:{r}:{a}:podidentityassociation/CLUSTER/ID) of this server.",
                p = identity.partition.as_str(),
                r = identity.region,
                a = identity.account_id,
                value = crate::domain::shown(value)
            ))
        };
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return Err(invalid("is not an ARN".into()));
        };
        if arn != "arn" || service != "eks" {
            return Err(invalid("is not an EKS ARN".into()));
        }
        if partition != identity.partition.as_str()
            || region != identity.region
            || account != identity.account_id
        {
            return Err(invalid(format!(
                "is in partition '{partition}', region '{region}', account '{account}', where this server has no resources"
            )));
        }
        let segments: Vec<&str> = resource.split('/').collect();
        let not_a_resource =
            || invalid("names neither a cluster nor a pod identity association".into());
        match segments[..] {
            ["cluster", name] => Ok(TaggableResource::Cluster(
                ClusterName::parse("resourceArn", name).map_err(|_| not_a_resource())?,
            )),
            ["podidentityassociation", cluster, id] => Ok(TaggableResource::Association(
                ClusterName::parse("resourceArn", cluster).map_err(|_| not_a_resource())?,
                AssociationId::parse(id).map_err(|_| not_a_resource())?,
            )),
            _ => Err(not_a_resource()),
        }
    }
}

/// An IAM role ARN: `arn:<partition>:iam::<account>:role/<path><name>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoleArn(String);

const MAX_ROLE_NAME: usize = 64;
const MAX_ROLE_PATH: usize = 512;

impl RoleArn {
    /// A role the store wrote, which was parsed before it was stored.
    pub(crate) fn from_stored(value: String) -> Self {
        RoleArn(value)
    }

    /// Parses a role that must live in the server's own partition and account,
    /// as EKS requires of `roleArn` (the role is passed to the cluster's account).
    pub fn parse_in_account(
        member: &str,
        value: &str,
        identity: &AwsIdentity,
    ) -> Result<Self, DomainError> {
        let role = Self::parse_in_partition(member, value, identity.partition)?;
        let account = value.split(':').nth(4).unwrap_or_default();
        if account != identity.account_id {
            return Err(DomainError::InvalidParameter(format!(
                "{member} {value} is in account {account}, but the role must be in the \
                 cluster's account {}; use a role of that account (or set the server's \
                 aws.account_id to match your ARNs).",
                identity.account_id,
                value = crate::domain::shown(value)
            )));
        }
        Ok(role)
    }

    /// Parses a role of the given partition, in any account.
    pub fn parse_in_partition(
        member: &str,
        value: &str,
        partition: Partition,
    ) -> Result<Self, DomainError> {
        let invalid = |rule: &str| {
            DomainError::InvalidParameter(format!(
                "{member} {value} is not a valid IAM role ARN: {rule}. Expected \
                 arn:{}:iam::<12-digit account>:role/<optional path/><role name>.",
                partition.as_str(),
                value = crate::domain::shown(value)
            ))
        };
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let [arn, arn_partition, service, region, account, resource] = parts[..] else {
            return Err(invalid("it must have six ':'-separated parts"));
        };
        if arn != "arn" || service != "iam" {
            return Err(invalid(
                "it must start with 'arn:' and name the 'iam' service",
            ));
        }
        if arn_partition != partition.as_str() {
            return Err(invalid(&format!(
                "its partition is '{arn_partition}' but this server's region is in partition '{}'",
                partition.as_str()
            )));
        }
        if !region.is_empty() {
            return Err(invalid("IAM ARNs have an empty region part ('iam::')"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("the account must be 12 digits"));
        }
        let Some(path_and_name) = resource.strip_prefix("role/") else {
            return Err(invalid("the resource must start with 'role/'"));
        };
        // "role/a/b/name": path "/a/b/", name "name".
        let (path, name) = match path_and_name.rfind('/') {
            Some(i) => (&path_and_name[..=i], &path_and_name[i + 1..]),
            None => ("", path_and_name),
        };
        let name_ok = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
        if name.is_empty() || name.chars().count() > MAX_ROLE_NAME || !name.chars().all(name_ok) {
            return Err(invalid(&format!(
                "the role name must be 1 to {MAX_ROLE_NAME} characters of letters, digits and _+=,.@-"
            )));
        }
        // IAM paths are "/" or "/…/" of printable ASCII; the leading "/" is the
        // one after "role", so the path as IAM counts it is "/" + path.
        if path.len() + 1 > MAX_ROLE_PATH
            || !path.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c))
        {
            return Err(invalid(&format!(
                "the role path must be at most {MAX_ROLE_PATH} printable ASCII characters"
            )));
        }
        if path.starts_with('/') || path.contains("//") {
            return Err(invalid(
                "the role path must not contain empty segments ('//')",
            ));
        }
        Ok(RoleArn(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> AwsIdentity {
        AwsIdentity::new("us-east-1", "123456789012")
    }

    #[test]
    fn the_partition_follows_the_region() {
        assert_eq!(Partition::of_region("us-east-1"), Partition::Aws);
        assert_eq!(Partition::of_region("cn-north-1"), Partition::AwsCn);
        assert_eq!(Partition::of_region("us-gov-west-1"), Partition::AwsUsGov);
    }

    #[test]
    fn eks_arns_name_partition_region_account_and_resource() {
        let id = AwsIdentity::new("cn-north-1", "111122223333");
        let cluster = ClusterName::parse("name", "c1").unwrap();
        let assoc = AssociationId::parse("a-8mvwvh57cu74mgcst").unwrap();
        assert_eq!(
            id.cluster_arn(&cluster),
            "arn:aws-cn:eks:cn-north-1:111122223333:cluster/c1"
        );
        assert_eq!(
            id.association_arn(&cluster, &assoc),
            "arn:aws-cn:eks:cn-north-1:111122223333:podidentityassociation/c1/a-8mvwvh57cu74mgcst"
        );
    }

    #[test]
    fn a_role_arn_in_the_servers_account_is_accepted_with_or_without_a_path() {
        for ok in [
            "arn:aws:iam::123456789012:role/my-role",
            "arn:aws:iam::123456789012:role/test/name",
            "arn:aws:iam::123456789012:role/a/b/c/x+=,.@_-",
        ] {
            assert!(
                RoleArn::parse_in_account("roleArn", ok, &identity()).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn a_role_arn_of_another_account_partition_or_service_is_refused() {
        for bad in [
            "arn:aws:iam::111122223333:role/my-role",
            "arn:aws-cn:iam::123456789012:role/my-role",
            "arn:aws:sts::123456789012:role/my-role",
            "arn:aws:iam:us-east-1:123456789012:role/my-role",
            "arn:aws:iam::123456789012:user/my-role",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role//x",
            "my-role",
            "",
        ] {
            assert!(
                RoleArn::parse_in_account("roleArn", bad, &identity()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_role_name_has_at_most_64_characters_and_a_path_at_most_512() {
        let name64 = format!("arn:aws:iam::123456789012:role/{}", "n".repeat(64));
        let name65 = format!("arn:aws:iam::123456789012:role/{}", "n".repeat(65));
        assert!(RoleArn::parse_in_account("roleArn", &name64, &identity()).is_ok());
        assert!(RoleArn::parse_in_account("roleArn", &name65, &identity()).is_err());
        let path512 = format!("arn:aws:iam::123456789012:role/{}/n", "p".repeat(510));
        let path513 = format!("arn:aws:iam::123456789012:role/{}/n", "p".repeat(511));
        assert!(RoleArn::parse_in_account("roleArn", &path512, &identity()).is_ok());
        assert!(RoleArn::parse_in_account("roleArn", &path513, &identity()).is_err());
    }

    #[test]
    fn tag_apis_take_cluster_and_association_arns_of_this_server_only() {
        let id = identity();
        let cluster =
            TaggableResource::parse("arn:aws:eks:us-east-1:123456789012:cluster/c1", &id).unwrap();
        assert_eq!(
            cluster,
            TaggableResource::Cluster(ClusterName::parse("name", "c1").unwrap())
        );
        let assoc =
            "arn:aws:eks:us-east-1:123456789012:podidentityassociation/c1/a-8mvwvh57cu74mgcst";
        assert!(matches!(
            TaggableResource::parse(assoc, &id),
            Ok(TaggableResource::Association(..))
        ));
        for bad in [
            "",
            "c1",
            "arn:aws:eks:us-west-2:123456789012:cluster/c1",
            "arn:aws:eks:us-east-1:111122223333:cluster/c1",
            "arn:aws-cn:eks:us-east-1:123456789012:cluster/c1",
            "arn:aws:iam::123456789012:role/c1",
            "arn:aws:eks:us-east-1:123456789012:nodegroup/c1/ng/uuid",
            "arn:aws:eks:us-east-1:123456789012:podidentityassociation/c1/a-1",
            "arn:aws:eks:us-east-1:123456789012:cluster/c1/extra",
        ] {
            assert!(TaggableResource::parse(bad, &id).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_message_names_the_member_and_the_rule() {
        let err =
            RoleArn::parse_in_account("roleArn", "arn:aws:iam::111122223333:role/r", &identity())
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("roleArn") && err.contains("123456789012"),
            "{err}"
        );
    }
}
