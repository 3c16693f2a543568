use super::{
    AssociationId, AwsIdentity, ClusterName, DomainError, Namespace, RoleArn, ServiceAccountName,
    Tags, Timestamp,
};

/// An inline IAM session policy: a JSON object of at most 2,048 characters.
/// Kept as the caller wrote it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionPolicy(String);

impl SessionPolicy {
    /// A policy the store wrote, which was parsed before it was stored.
    pub(crate) fn from_stored(value: String) -> Self {
        SessionPolicy(value)
    }

    pub const MAX_CHARS: usize = 2048;

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let chars = value.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(DomainError::InvalidParameter(format!(
                "policy is {chars} characters long; a session policy can be at most {} characters.",
                Self::MAX_CHARS
            )));
        }
        match serde_json::from_str::<serde_json::Value>(value) {
            Ok(serde_json::Value::Object(_)) => Ok(SessionPolicy(value.to_owned())),
            _ => Err(DomainError::InvalidParameter(
                "policy must be an IAM policy document: a JSON object such as \
                 {\"Version\":\"2012-10-17\",\"Statement\":[...]}, sent as a string."
                    .into(),
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A `policy` needs session tags disabled (Model docs on `policy`).
fn check_policy_needs_disabled_session_tags(
    policy: Option<&SessionPolicy>,
    disable_session_tags: bool,
) -> Result<(), DomainError> {
    if policy.is_some() && !disable_session_tags {
        return Err(DomainError::InvalidParameter(
            "policy can only be used with disableSessionTags set to true; set disableSessionTags to \
             true or remove the policy."
                .into(),
        ));
    }
    Ok(())
}

/// What CreatePodIdentityAssociation asks for, validated. (The store keeps
/// a fingerprint of it with a client request token, in an encoding of its
/// own: `store::records::fingerprint`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAssociation {
    pub namespace: Namespace,
    pub service_account: ServiceAccountName,
    pub role_arn: RoleArn,
    pub tags: Tags,
    pub disable_session_tags: bool,
    pub target_role_arn: Option<RoleArn>,
    pub policy: Option<SessionPolicy>,
}

/// A pod identity association: a (cluster, namespace, service account) bound to a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    pub cluster: ClusterName,
    pub id: AssociationId,
    pub namespace: Namespace,
    pub service_account: ServiceAccountName,
    pub role_arn: RoleArn,
    pub tags: Tags,
    pub created_at: Timestamp,
    pub modified_at: Timestamp,
    pub disable_session_tags: bool,
    pub target_role_arn: Option<RoleArn>,
    /// Generated when a target role is first set; kept while one is set.
    pub external_id: Option<String>,
    pub policy: Option<SessionPolicy>,
}

/// A value an Update request gave for a member that can never change. It is
/// accepted when equal to the stored one, so clients that echo the whole
/// association back keep working.
#[derive(Debug, Clone, PartialEq)]
pub enum ImmutableClaim {
    ClusterName(String),
    AssociationId(String),
    AssociationArn(String),
    Namespace(String),
    ServiceAccount(String),
    OwnerArn(String),
    /// Epoch seconds, as the wire carries them.
    CreatedAt(f64),
}

/// What UpdatePodIdentityAssociation asks for, validated. `None` leaves a
/// member as it is; `Some(None)` clears an optional one (sent as `""`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssociationUpdate {
    pub role_arn: Option<RoleArn>,
    pub disable_session_tags: Option<bool>,
    pub target_role_arn: Option<Option<RoleArn>>,
    pub policy: Option<Option<SessionPolicy>>,
    pub claims: Vec<ImmutableClaim>,
}

impl Association {
    pub fn new(
        cluster: ClusterName,
        id: AssociationId,
        request: NewAssociation,
        now: Timestamp,
    ) -> Result<Self, DomainError> {
        check_policy_needs_disabled_session_tags(
            request.policy.as_ref(),
            request.disable_session_tags,
        )?;
        let external_id = request.target_role_arn.as_ref().map(|_| new_external_id());
        Ok(Association {
            cluster,
            id,
            namespace: request.namespace,
            service_account: request.service_account,
            role_arn: request.role_arn,
            tags: request.tags,
            created_at: now,
            modified_at: now,
            disable_session_tags: request.disable_session_tags,
            target_role_arn: request.target_role_arn,
            external_id,
            policy: request.policy,
        })
    }

    /// The rules every stored association keeps, checked for one that comes
    /// from somewhere other than a request (an imported file): a `policy`
    /// only with session tags disabled, an `externalId` exactly while a
    /// target role is set, and a `modifiedAt` no earlier than `createdAt`.
    pub fn check_consistent(&self) -> Result<(), DomainError> {
        check_policy_needs_disabled_session_tags(self.policy.as_ref(), self.disable_session_tags)?;
        match (&self.target_role_arn, &self.external_id) {
            (Some(_), None) => {
                return Err(DomainError::InvalidParameter(
                    "targetRoleArn is set but externalId is not; an association with a target \
                     role always has the externalId generated with it."
                        .into(),
                ))
            }
            (None, Some(_)) => {
                return Err(DomainError::InvalidParameter(
                    "externalId is set without a targetRoleArn; it exists only while a target \
                     role is set."
                        .into(),
                ))
            }
            (Some(_), Some(id)) if id.is_empty() => {
                return Err(DomainError::InvalidParameter(
                    "externalId is empty; it must be the ID generated with the target role.".into(),
                ))
            }
            _ => {}
        }
        if self.modified_at < self.created_at {
            return Err(DomainError::InvalidParameter(format!(
                "modifiedAt {} is before createdAt {}; an association is modified after it is \
                 created.",
                self.modified_at.as_millis(),
                self.created_at.as_millis()
            )));
        }
        Ok(())
    }

    pub fn arn(&self, identity: &AwsIdentity) -> String {
        identity.association_arn(&self.cluster, &self.id)
    }

    /// Refuses an update that names an immutable member with another value.
    pub fn check_claims(
        &self,
        claims: &[ImmutableClaim],
        identity: &AwsIdentity,
    ) -> Result<(), DomainError> {
        for claim in claims {
            let (member, stored, requested) = match claim {
                ImmutableClaim::ClusterName(v) => {
                    ("clusterName", self.cluster.to_string(), v.clone())
                }
                ImmutableClaim::AssociationId(v) => {
                    ("associationId", self.id.to_string(), v.clone())
                }
                ImmutableClaim::AssociationArn(v) => {
                    ("associationArn", self.arn(identity), v.clone())
                }
                ImmutableClaim::Namespace(v) => {
                    ("namespace", self.namespace.to_string(), v.clone())
                }
                ImmutableClaim::ServiceAccount(v) => (
                    "serviceAccount",
                    self.service_account.to_string(),
                    v.clone(),
                ),
                // No association here is owned by an add-on, so any ownerArn differs.
                ImmutableClaim::OwnerArn(v) => ("ownerArn", "none".to_owned(), super::shown(v)),
                ImmutableClaim::CreatedAt(seconds) => {
                    let requested_ms = (seconds * 1000.0).round() as i64;
                    let stored = self.created_at.to_string();
                    if requested_ms == self.created_at.as_millis() {
                        continue;
                    }
                    ("createdAt", stored, seconds.to_string())
                }
            };
            if stored != requested {
                return Err(DomainError::ImmutableField {
                    cluster: self.cluster.clone(),
                    member,
                    stored,
                    requested,
                });
            }
        }
        Ok(())
    }

    /// The association after `update`, or `None` when the update changes
    /// nothing (then nothing is written and `modifiedAt` stays).
    pub fn updated(
        &self,
        update: &AssociationUpdate,
        now: Timestamp,
    ) -> Result<Option<Association>, DomainError> {
        let mut next = self.clone();
        if let Some(role_arn) = &update.role_arn {
            next.role_arn = role_arn.clone();
        }
        if let Some(disable) = update.disable_session_tags {
            next.disable_session_tags = disable;
        }
        if let Some(target) = &update.target_role_arn {
            next.external_id = match (&self.target_role_arn, target) {
                (_, None) => None,
                (None, Some(_)) => Some(new_external_id()),
                (Some(_), Some(_)) => self.external_id.clone().or_else(|| Some(new_external_id())),
            };
            next.target_role_arn = target.clone();
        }
        if let Some(policy) = &update.policy {
            next.policy = policy.clone();
        }
        check_policy_needs_disabled_session_tags(next.policy.as_ref(), next.disable_session_tags)?;
        if next == *self {
            return Ok(None);
        }
        next.modified_at = self.modified_at.next_after(now);
        Ok(Some(next))
    }
}

/// The `externalId` for a target role's trust policy: a random UUID.
fn new_external_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn identity() -> AwsIdentity {
        AwsIdentity::new("us-east-1", "123456789012")
    }

    /// A role of the test account (also for the store's tests).
    pub(crate) fn role(name: &str) -> RoleArn {
        RoleArn::parse_in_account(
            "roleArn",
            &format!("arn:aws:iam::123456789012:role/{name}"),
            &identity(),
        )
        .unwrap()
    }

    /// A request for namespace `default`, service account `app` and role
    /// `r1`, without tags or session members (also for the store's tests).
    pub(crate) fn new_association() -> NewAssociation {
        NewAssociation {
            namespace: Namespace::parse("default").unwrap(),
            service_account: ServiceAccountName::parse("app").unwrap(),
            role_arn: role("r1"),
            tags: Tags::default(),
            disable_session_tags: false,
            target_role_arn: None,
            policy: None,
        }
    }

    /// An association of cluster `c1` made from [`new_association`] (also
    /// for the faults' and eksauth's tests).
    pub(crate) fn association() -> Association {
        Association::new(
            ClusterName::parse("name", "c1").unwrap(),
            AssociationId::parse("a-8mvwvh57cu74mgcst").unwrap(),
            new_association(),
            Timestamp::from_millis(1_700_000_000_123),
        )
        .unwrap()
    }

    fn policy() -> SessionPolicy {
        SessionPolicy::parse(r#"{"Version":"2012-10-17","Statement":[]}"#).unwrap()
    }

    #[test]
    fn an_update_to_the_same_role_changes_nothing() {
        let a = association();
        let same = AssociationUpdate {
            role_arn: Some(role("r1")),
            disable_session_tags: Some(false),
            ..Default::default()
        };
        assert_eq!(
            a.updated(&same, Timestamp::from_millis(1_800_000_000_000)),
            Ok(None)
        );
        assert_eq!(
            a.updated(&AssociationUpdate::default(), Timestamp::from_millis(0)),
            Ok(None)
        );
    }

    #[test]
    fn an_update_moves_modified_at_forward_and_keeps_created_at() {
        let a = association();
        let change = AssociationUpdate {
            role_arn: Some(role("r2")),
            ..Default::default()
        };
        let b = a
            .updated(&change, Timestamp::from_millis(1))
            .unwrap()
            .unwrap();
        assert_eq!(b.role_arn, role("r2"));
        assert_eq!(b.created_at, a.created_at);
        assert!(b.modified_at > a.modified_at);
    }

    #[test]
    fn immutable_members_are_accepted_when_equal_and_refused_when_different() {
        let a = association();
        let equal = [
            ImmutableClaim::ClusterName("c1".into()),
            ImmutableClaim::AssociationId("a-8mvwvh57cu74mgcst".into()),
            ImmutableClaim::AssociationArn(a.arn(&identity())),
            ImmutableClaim::Namespace("default".into()),
            ImmutableClaim::ServiceAccount("app".into()),
            ImmutableClaim::CreatedAt(1_700_000_000.123),
        ];
        assert!(a.check_claims(&equal, &identity()).is_ok());
        let different = [
            ImmutableClaim::ClusterName("c2".into()),
            ImmutableClaim::AssociationId("a-aaaaaaaaaaaaaaaaa".into()),
            ImmutableClaim::AssociationArn(
                "arn:aws:eks:us-east-1:123456789012:podidentityassociation/c2/x".into(),
            ),
            ImmutableClaim::Namespace("other".into()),
            ImmutableClaim::ServiceAccount("other".into()),
            ImmutableClaim::OwnerArn("arn:aws:eks:us-east-1:123456789012:addon/c1/x/y".into()),
            ImmutableClaim::CreatedAt(1.0),
        ];
        for claim in different {
            let err = a
                .check_claims(std::slice::from_ref(&claim), &identity())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("cannot be moved between clusters, namespaces or service accounts"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_external_id_comes_with_the_first_target_role_stays_while_one_is_set_and_goes_with_it() {
        let a = association();
        let set = |target: Option<RoleArn>| AssociationUpdate {
            target_role_arn: Some(target),
            ..Default::default()
        };
        let b = a
            .updated(&set(Some(role("t1"))), Timestamp::from_millis(0))
            .unwrap()
            .unwrap();
        let external_id = b
            .external_id
            .clone()
            .expect("an external ID with the target role");
        let c = b
            .updated(&set(Some(role("t2"))), Timestamp::from_millis(0))
            .unwrap()
            .unwrap();
        assert_eq!(c.external_id.as_ref(), Some(&external_id));
        let d = c
            .updated(&set(None), Timestamp::from_millis(0))
            .unwrap()
            .unwrap();
        assert_eq!((d.target_role_arn, d.external_id), (None, None));
    }

    #[test]
    fn a_policy_needs_session_tags_disabled_before_and_after_an_update() {
        let a = association();
        let with_policy = AssociationUpdate {
            policy: Some(Some(policy())),
            ..Default::default()
        };
        assert!(a.updated(&with_policy, Timestamp::from_millis(0)).is_err());
        let both = AssociationUpdate {
            policy: Some(Some(policy())),
            disable_session_tags: Some(true),
            ..Default::default()
        };
        let b = a
            .updated(&both, Timestamp::from_millis(0))
            .unwrap()
            .unwrap();
        let reenable = AssociationUpdate {
            disable_session_tags: Some(false),
            ..Default::default()
        };
        assert!(b.updated(&reenable, Timestamp::from_millis(0)).is_err());
        let clear = AssociationUpdate {
            policy: Some(None),
            disable_session_tags: Some(false),
            ..Default::default()
        };
        assert_eq!(
            b.updated(&clear, Timestamp::from_millis(0))
                .unwrap()
                .unwrap()
                .policy,
            None
        );
    }

    #[test]
    fn a_consistent_association_has_its_external_id_with_its_target_role_and_is_modified_after_creation(
    ) {
        let a = association();
        assert!(a.check_consistent().is_ok());
        let mut targeted = a.clone();
        targeted.target_role_arn = Some(role("t"));
        assert!(targeted.check_consistent().is_err());
        targeted.external_id = Some("e".into());
        assert!(targeted.check_consistent().is_ok());
        let mut orphan_id = a.clone();
        orphan_id.external_id = Some("e".into());
        assert!(orphan_id.check_consistent().is_err());
        let mut policy_with_tags = a.clone();
        policy_with_tags.policy = Some(policy());
        assert!(policy_with_tags.check_consistent().is_err());
        let mut backwards = a;
        backwards.modified_at = Timestamp::from_millis(backwards.created_at.as_millis() - 1);
        assert!(backwards.check_consistent().is_err());
    }

    #[test]
    fn a_session_policy_is_a_json_object_of_at_most_2048_characters() {
        assert!(SessionPolicy::parse("{}").is_ok());
        assert!(SessionPolicy::parse("[]").is_err());
        assert!(SessionPolicy::parse("{").is_err());
        assert!(SessionPolicy::parse("not json").is_err());
        let big = format!(r#"{{"k":"{}"}}"#, "x".repeat(2040));
        assert_eq!(big.len(), 2048);
        assert!(SessionPolicy::parse(&big).is_ok());
        let too_big = format!(r#"{{"k":"{}"}}"#, "x".repeat(2041));
        assert!(SessionPolicy::parse(&too_big).is_err());
    }
}
