use super::{
    AssociationId, AwsIdentity, ClusterName, DomainError, Namespace, RoleArn, ServiceAccountName,
    Tags, Timestamp,
};

/// What CreatePodIdentityAssociation asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewAssociation {
    pub namespace: Namespace,
    pub service_account: ServiceAccountName,
    pub role_arn: RoleArn,
    pub tags: Tags,
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
}

/// A value an Update request gave for a member that can never change. It is
/// accepted when equal to the stored one, so clients that echo the whole
/// association back keep working.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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

/// What UpdatePodIdentityAssociation asks for, validated.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AssociationUpdate {
    pub role_arn: Option<RoleArn>,
    pub claims: Vec<ImmutableClaim>,
}

impl AssociationUpdate {
    /// The request's parameters as bytes, to tell a retry (same bytes) from a
    /// different request that reuses a `clientRequestToken`.
    pub fn fingerprint(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an update always serializes")
    }
}

impl NewAssociation {
    pub fn fingerprint(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a create request always serializes")
    }
}

impl Association {
    pub fn new(
        cluster: ClusterName,
        id: AssociationId,
        request: NewAssociation,
        now: Timestamp,
    ) -> Self {
        Association {
            cluster,
            id,
            namespace: request.namespace,
            service_account: request.service_account,
            role_arn: request.role_arn,
            tags: request.tags,
            created_at: now,
            modified_at: now,
        }
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
                ImmutableClaim::OwnerArn(v) => ("ownerArn", "(none)".to_owned(), v.clone()),
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
    pub fn updated(&self, update: &AssociationUpdate, now: Timestamp) -> Option<Association> {
        let role_arn = update
            .role_arn
            .as_ref()
            .filter(|role| **role != self.role_arn)?;
        Some(Association {
            role_arn: role_arn.clone(),
            modified_at: self.modified_at.next_after(now),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> AwsIdentity {
        AwsIdentity::new("us-east-1", "123456789012")
    }

    fn role(name: &str) -> RoleArn {
        RoleArn::parse_in_account(
            "roleArn",
            &format!("arn:aws:iam::123456789012:role/{name}"),
            &identity(),
        )
        .unwrap()
    }

    fn association() -> Association {
        let request = NewAssociation {
            namespace: Namespace::parse("default").unwrap(),
            service_account: ServiceAccountName::parse("app").unwrap(),
            role_arn: role("r1"),
            tags: Tags::default(),
        };
        Association::new(
            ClusterName::parse("name", "c1").unwrap(),
            AssociationId::parse("a-8mvwvh57cu74mgcst").unwrap(),
            request,
            Timestamp::from_millis(1_700_000_000_123),
        )
    }

    #[test]
    fn an_update_to_the_same_role_changes_nothing() {
        let a = association();
        let same = AssociationUpdate {
            role_arn: Some(role("r1")),
            claims: vec![],
        };
        assert_eq!(
            a.updated(&same, Timestamp::from_millis(1_800_000_000_000)),
            None
        );
        assert_eq!(
            a.updated(&AssociationUpdate::default(), Timestamp::from_millis(0)),
            None
        );
    }

    #[test]
    fn an_update_moves_modified_at_forward_and_keeps_created_at() {
        let a = association();
        let change = AssociationUpdate {
            role_arn: Some(role("r2")),
            claims: vec![],
        };
        let b = a.updated(&change, Timestamp::from_millis(1)).unwrap();
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
}
