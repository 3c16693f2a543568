//! What one AssumeRoleForPodIdentity call asks of the credential provider:
//! the role, the session name and the session tags EKS sends with it.

use super::provider::RoleRequest;
use super::token::VerifiedToken;
use crate::domain::{Association, ClusterName};

/// STS's limit on `RoleSessionName`.
pub const MAX_SESSION_NAME: usize = 64;

/// The six session tags, in the order EKS lists them.
pub const SESSION_TAG_KEYS: [&str; 6] = [
    "eks-cluster-arn",
    "eks-cluster-name",
    "kubernetes-namespace",
    "kubernetes-service-account",
    "kubernetes-pod-name",
    "kubernetes-pod-uid",
];

/// `eks-CLUSTER-PODNAME-UUID`, cut to STS's 64 characters, with any
/// character STS does not take in a session name (`[\w+=,.@-]`) made `-`:
/// an external issuer's pod name is not checked as Kubernetes would.
pub fn session_name(cluster: &ClusterName, pod_name: &str, unique: uuid::Uuid) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    format!("eks-{cluster}-{pod_name}-{unique}")
        .chars()
        .map(|c| if ok(c) { c } else { '-' })
        .take(MAX_SESSION_NAME)
        .collect()
}

/// The role request for the pod `token` names under `association`.
pub fn role_request(
    association: &Association,
    cluster_arn: &str,
    token: &VerifiedToken,
    duration_seconds: u32,
) -> RoleRequest {
    let (session_tags, transitive_tag_keys) = if association.disable_session_tags {
        (Vec::new(), Vec::new())
    } else {
        let values = [
            cluster_arn,
            association.cluster.as_str(),
            token.namespace.as_str(),
            token.service_account.as_str(),
            token.pod_name.as_str(),
            token.pod_uid.as_str(),
        ];
        (
            SESSION_TAG_KEYS
                .iter()
                .zip(values)
                .map(|(k, v)| ((*k).to_owned(), v.to_owned()))
                .collect(),
            SESSION_TAG_KEYS.iter().map(|k| (*k).to_owned()).collect(),
        )
    };
    RoleRequest {
        role_arn: association.role_arn.to_string(),
        target_role_arn: association
            .target_role_arn
            .as_ref()
            .map(ToString::to_string),
        external_id: association.external_id.clone(),
        session_name: session_name(&association.cluster, &token.pod_name, uuid::Uuid::new_v4()),
        session_tags,
        transitive_tag_keys,
        policy: association.policy.as_ref().map(|p| p.as_str().to_owned()),
        duration_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::association_fixtures;
    use crate::domain::{Namespace, RoleArn, ServiceAccountName, SessionPolicy, Timestamp};

    fn token() -> VerifiedToken {
        VerifiedToken {
            issuer: "http://x/id/A".into(),
            namespace: Namespace::parse("prod").unwrap(),
            service_account: ServiceAccountName::parse("app").unwrap(),
            pod_name: "app-7d9f".into(),
            pod_uid: "pod-uid".into(),
            expires_at: Timestamp::from_millis(0),
        }
    }

    const CLUSTER_ARN: &str = "arn:aws:eks:us-east-1:123456789012:cluster/c1";

    #[test]
    fn the_session_name_is_eks_cluster_pod_uuid_cut_to_64_characters() {
        let unique = uuid::Uuid::parse_str("6f1c2a8e-0b0e-4d8f-9a39-6b3c1d6e2f10").unwrap();
        let cluster = ClusterName::parse("name", "c1").unwrap();
        assert_eq!(
            session_name(&cluster, "app", unique),
            "eks-c1-app-6f1c2a8e-0b0e-4d8f-9a39-6b3c1d6e2f10"
        );
        let long = ClusterName::parse("name", &"c".repeat(100)).unwrap();
        let name = session_name(&long, "app", unique);
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("eks-ccc"), "{name}");
    }

    #[test]
    fn characters_sts_refuses_in_a_session_name_become_dashes() {
        let unique = uuid::Uuid::nil();
        let cluster = ClusterName::parse("name", "c1").unwrap();
        assert!(session_name(&cluster, "a/b c:d", unique).starts_with("eks-c1-a-b-c-d-"));
    }

    #[test]
    fn the_request_carries_the_six_transitive_tags_in_order() {
        let association = association_fixtures::association();
        let request = role_request(&association, CLUSTER_ARN, &token(), 3600);
        let keys: Vec<&str> = request
            .session_tags
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, SESSION_TAG_KEYS);
        let values: Vec<&str> = request
            .session_tags
            .iter()
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            values,
            [
                CLUSTER_ARN,
                association.cluster.as_str(),
                "prod",
                "app",
                "app-7d9f",
                "pod-uid"
            ]
        );
        assert_eq!(request.transitive_tag_keys, SESSION_TAG_KEYS);
        assert_eq!(request.role_arn, association.role_arn.as_str());
        assert_eq!(request.duration_seconds, 3600);
        assert!(request
            .session_name
            .starts_with(&format!("eks-{}-app-7d9f-", association.cluster)));
    }

    #[test]
    fn disabled_session_tags_send_none_and_the_policy_goes_along() {
        let mut association = association_fixtures::association();
        association.disable_session_tags = true;
        association.policy = Some(SessionPolicy::parse(r#"{"Version":"2012-10-17"}"#).unwrap());
        let request = role_request(&association, CLUSTER_ARN, &token(), 900);
        assert!(request.session_tags.is_empty());
        assert!(request.transitive_tag_keys.is_empty());
        assert_eq!(
            request.policy.as_deref(),
            Some(r#"{"Version":"2012-10-17"}"#)
        );
    }

    #[test]
    fn a_target_role_goes_along_with_the_external_id() {
        let mut association = association_fixtures::association();
        association.target_role_arn = Some(
            RoleArn::parse_in_partition(
                "targetRoleArn",
                "arn:aws:iam::111122223333:role/target",
                crate::domain::Partition::Aws,
            )
            .unwrap(),
        );
        association.external_id = Some("ext-1".into());
        let request = role_request(&association, CLUSTER_ARN, &token(), 900);
        assert_eq!(
            request.target_role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/target")
        );
        assert_eq!(request.external_id.as_deref(), Some("ext-1"));
    }
}
