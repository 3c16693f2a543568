//! Golden bytes: every record kind the store writes or once wrote, and the
//! request fingerprints saved with client request tokens, frozen in
//! `migrations/fixtures/records.tsv` by the code that wrote them.
//!
//! A stored byte that changes breaks every store already on disk (a record
//! that no longer decodes) or every saved token (a retry that no longer
//! matches its fingerprint and is refused as a reused token). So the file is
//! never regenerated: if a test here fails, the change needs a new format
//! version and a migration step, not a new expected value.

use std::collections::BTreeMap;
use std::path::Path;

use super::eks_auth::{CredentialRecord, IssuerRecord};
use super::records::tests::association_v2;
use super::records::{
    decode, encode, fingerprint, v1, AssociationRecord, ClusterRecord, IndexRecord, Record,
    SavedResponse, TokenRecord,
};
use crate::domain::association_fixtures::role;
use crate::domain::{
    Association, AssociationId, AssociationUpdate, AwsIdentity, Cluster, ClusterName,
    ClusterStatus, ImmutableClaim, Namespace, NewAssociation, NewCluster, RoleArn,
    ServiceAccountName, SessionPolicy, Tags, Timestamp,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn identity() -> AwsIdentity {
    AwsIdentity::new("us-east-1", "123456789012")
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Tags::parse("tags", map).unwrap()
}

fn name(value: &str) -> ClusterName {
    ClusterName::parse("name", value).unwrap()
}

fn id(value: &str) -> AssociationId {
    AssociationId::parse(value).unwrap()
}

fn new_cluster() -> NewCluster {
    NewCluster {
        name: name("prod"),
        role_arn: role("eks-cluster"),
        version: "1.31".into(),
        tags: tags(&[("team", "platform"), ("quote\"d", "é\\\u{1}")]),
    }
}

fn cluster(status: ClusterStatus) -> Cluster {
    let mut cluster = Cluster::new(
        new_cluster(),
        Timestamp::from_millis(1_795_883_469_375),
        5_000,
    );
    if status != ClusterStatus::Creating {
        cluster.set_status(status);
    }
    cluster
}

fn new_association_minimal() -> NewAssociation {
    NewAssociation {
        namespace: Namespace::parse("default").unwrap(),
        service_account: ServiceAccountName::parse("app").unwrap(),
        role_arn: role("app-v1"),
        tags: Tags::default(),
        disable_session_tags: false,
        target_role_arn: None,
        policy: None,
    }
}

fn new_association_full() -> NewAssociation {
    NewAssociation {
        namespace: Namespace::parse("kube-system").unwrap(),
        service_account: ServiceAccountName::parse("ebs-csi-controller-sa").unwrap(),
        role_arn: role("path/ebs-csi"),
        tags: tags(&[("env", "prod")]),
        disable_session_tags: true,
        target_role_arn: Some(
            RoleArn::parse_in_partition(
                "targetRoleArn",
                "arn:aws:iam::111122223333:role/target",
                identity().partition,
            )
            .unwrap(),
        ),
        policy: Some(SessionPolicy::parse(r#"{"Version":"2012-10-17","Statement":[]}"#).unwrap()),
    }
}

fn association_minimal() -> Association {
    Association::new(
        name("prod"),
        id("a-zs0z0lb770bph08d5"),
        new_association_minimal(),
        Timestamp::from_millis(1_795_883_469_375),
    )
    .unwrap()
}

fn association_full() -> Association {
    let mut association = Association::new(
        name("prod"),
        id("a-p45ceds3nvtoc376x"),
        new_association_full(),
        Timestamp::from_millis(1_795_883_469_387),
    )
    .unwrap();
    // Generated at random on create: fixed here.
    association.external_id = Some("5f0c8a3e-2b7d-4c1e-9a6f-0d3b8e7c1a24".into());
    association.modified_at = Timestamp::from_millis(1_795_883_469_536);
    association
}

fn update_role_only() -> AssociationUpdate {
    AssociationUpdate {
        role_arn: Some(role("app-v2")),
        ..AssociationUpdate::default()
    }
}

fn update_clearing() -> AssociationUpdate {
    AssociationUpdate {
        role_arn: None,
        disable_session_tags: Some(false),
        target_role_arn: Some(None),
        policy: Some(None),
        claims: Vec::new(),
    }
}

fn update_full() -> AssociationUpdate {
    let full = new_association_full();
    AssociationUpdate {
        role_arn: Some(role("app-v3")),
        disable_session_tags: Some(true),
        target_role_arn: Some(full.target_role_arn),
        policy: Some(full.policy),
        claims: vec![
            ImmutableClaim::ClusterName("prod".into()),
            ImmutableClaim::AssociationId("a-zs0z0lb770bph08d5".into()),
            ImmutableClaim::AssociationArn(
                "arn:aws:eks:us-east-1:123456789012:podidentityassociation/prod/a-zs0z0lb770bph08d5"
                    .into(),
            ),
            ImmutableClaim::Namespace("default".into()),
            ImmutableClaim::ServiceAccount("app\"\\\n".into()),
            ImmutableClaim::OwnerArn("arn:aws:eks:us-east-1:123456789012:cluster/prod".into()),
            ImmutableClaim::CreatedAt(1_795_883_469.375),
            ImmutableClaim::CreatedAt(1.0),
            ImmutableClaim::CreatedAt(1e21),
        ],
    }
}

/// Schema 1's records held the same values as today's, minus the members
/// added since.
fn v1_cluster(status: ClusterStatus, generation: u64) -> v1::ClusterRecord {
    let c = ClusterRecord::new(&cluster(status));
    v1::ClusterRecord {
        name: c.name,
        role_arn: c.role_arn,
        version: c.version,
        tags: c.tags,
        created_at: c.created_at,
        status: c.status,
        activate_at: c.activate_at,
        generation,
    }
}

fn v1_association() -> v1::AssociationRecord {
    let a = AssociationRecord::new(&association_full(), None);
    v1::AssociationRecord {
        cluster: a.cluster,
        id: a.id,
        namespace: a.namespace,
        service_account: a.service_account,
        role_arn: a.role_arn,
        tags: a.tags,
        created_at: a.created_at,
        modified_at: a.modified_at,
    }
}

/// A cluster record as the store keeps it: counter and deletion flag set.
fn cluster_record(status: ClusterStatus) -> ClusterRecord {
    let mut record = ClusterRecord::new(&cluster(status));
    record.association_count = 2;
    record.deleting = status == ClusterStatus::Deleting;
    record
}

const CREATE_TOKEN_KEY: &[u8] = b"prod\0association.create\0fixture-create-1";

/// Every frozen value: its kind (which says how to decode it), a name, and
/// its bytes as the code that wrote the file encoded it.
fn cases() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut cases = Vec::new();
    for status in ClusterStatus::ALL {
        cases.push((
            "cluster.2",
            format!("status-{}", status.as_str().to_lowercase()),
            encode(&cluster_record(status)),
        ));
    }
    cases.push((
        "association.2",
        "minimal".into(),
        encode(&AssociationRecord::new(&association_minimal(), None)),
    ));
    cases.push((
        "association.2",
        "full".into(),
        encode(&AssociationRecord::new(
            &association_full(),
            Some(CREATE_TOKEN_KEY.to_vec()),
        )),
    ));
    cases.push((
        "index.1",
        "slot".into(),
        encode(&IndexRecord::new(&id("a-zs0z0lb770bph08d5"))),
    ));
    cases.push((
        "token.2",
        "create-cluster".into(),
        encode(&TokenRecord {
            fingerprint: fingerprint::create_cluster(&new_cluster()),
            expires_at: 1_795_969_869_375,
            response: SavedResponse::Cluster(ClusterRecord::new(&cluster(ClusterStatus::Creating))),
        }),
    ));
    cases.push((
        "token.2",
        "create-association".into(),
        encode(&TokenRecord {
            fingerprint: fingerprint::create_association(&new_association_full()),
            expires_at: 1_795_969_869_387,
            response: SavedResponse::Association(AssociationRecord::new(
                &association_full(),
                Some(CREATE_TOKEN_KEY.to_vec()),
            )),
        }),
    ));
    cases.push((
        "token.2",
        "update-association".into(),
        encode(&TokenRecord {
            fingerprint: fingerprint::update_association(&update_role_only()),
            expires_at: 1_795_969_869_536,
            response: SavedResponse::Association(AssociationRecord::new(
                &association_minimal(),
                None,
            )),
        }),
    ));
    for status in ClusterStatus::ALL {
        cases.push((
            "cluster.1",
            format!("status-{}", status.as_str().to_lowercase()),
            encode(&v1_cluster(status, 7)),
        ));
    }
    cases.push(("association.1", "plain".into(), encode(&v1_association())));
    cases.push((
        "token.1",
        "create-cluster".into(),
        encode(&v1::TokenRecord {
            fingerprint: fingerprint::create_cluster(&new_cluster()),
            expires_at: 1_795_969_869_375,
            response: v1::SavedResponse::Cluster(v1_cluster(ClusterStatus::Creating, 1)),
        }),
    ));
    cases.push((
        "token.1",
        "create-association".into(),
        encode(&v1::TokenRecord {
            fingerprint: fingerprint::create_association(&new_association_minimal()),
            expires_at: 1_795_969_869_387,
            response: v1::SavedResponse::Association(v1_association()),
        }),
    ));
    cases.push((
        "fingerprint",
        "create-cluster".into(),
        fingerprint::create_cluster(&new_cluster()),
    ));
    cases.push((
        "fingerprint",
        "create-association-minimal".into(),
        fingerprint::create_association(&new_association_minimal()),
    ));
    cases.push((
        "fingerprint",
        "create-association-full".into(),
        fingerprint::create_association(&new_association_full()),
    ));
    cases.push((
        "fingerprint",
        "update-role-only".into(),
        fingerprint::update_association(&update_role_only()),
    ));
    cases.push((
        "fingerprint",
        "update-clearing".into(),
        fingerprint::update_association(&update_clearing()),
    ));
    cases.push((
        "fingerprint",
        "update-full".into(),
        fingerprint::update_association(&update_full()),
    ));
    // Plain values, not built from the domain's.
    let literal = association_v2();
    cases.push((
        "association.1",
        "literal".into(),
        encode(&v1::AssociationRecord {
            cluster: literal.cluster.clone(),
            id: literal.id.clone(),
            namespace: literal.namespace.clone(),
            service_account: literal.service_account.clone(),
            role_arn: literal.role_arn.clone(),
            tags: literal.tags.clone(),
            created_at: literal.created_at,
            modified_at: literal.modified_at,
        }),
    ));
    cases.push(("association.2", "literal".into(), encode(&literal)));
    cases.push((
        "issuer.1",
        "with-external".into(),
        encode(&IssuerRecord {
            id: "5723A5A0F1C978D1D786297311D51C3F".into(),
            // Not a real key: the record keeps the bytes as they are.
            signing_key: vec![0x30, 0x82, 0x04, 0xa4, 0x02, 0x01, 0x00],
            external: Some((
                "https://kubernetes.default.svc".into(),
                r#"{"keys":[]}"#.into(),
            )),
        }),
    ));
    cases.push((
        "credential.1",
        "chained-with-tags".into(),
        encode(&CredentialRecord {
            expires_at: 1_795_887_069_375,
            access_key_id: "ASIAZTV6Y73OIGKRY4X2".into(),
            role_arn: "arn:aws:iam::999988887777:role/target".into(),
            source_role_arn: Some(role("app-v2").to_string()),
            external_id: Some("6b1d0f7e-1c1a-4f0e-9d2a-2f4b8f1e0c55".into()),
            session_name: "eks-prod-app-7d9f-cd75acc5-b7ec-40bd-baa9-f89fd511df70".into(),
            session_tags: vec![
                ("eks-cluster-name".into(), "prod".into()),
                ("kubernetes-pod-name".into(), "app-7d9f".into()),
            ],
            transitive_tag_keys: vec!["eks-cluster-name".into(), "kubernetes-pod-name".into()],
            policy: None,
            association_arn:
                "arn:aws:eks:us-east-1:123456789012:podidentityassociation/prod/a-zs0z0lb770bph08d5"
                    .into(),
            cluster: "prod".into(),
            namespace: "default".into(),
            service_account: "app".into(),
            pod_name: "app-7d9f".into(),
            pod_uid: "1d4ab7a4-3c39-4f3e-8b0a-5c3d0a3f1e22".into(),
        }),
    ));
    cases
}

fn fixture_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/fixtures/records.tsv")
}

/// The frozen lines: kind, name, bytes.
fn frozen() -> Vec<(String, String, Vec<u8>)> {
    let text = std::fs::read_to_string(fixture_path()).expect("migrations/fixtures/records.tsv");
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let parts: Vec<&str> = line.split('\t').collect();
            assert_eq!(parts.len(), 3, "a line is kind, name, hex: {line}");
            (parts[0].to_owned(), parts[1].to_owned(), unhex(parts[2]))
        })
        .collect()
}

/// Decodes `bytes` as a `T` and encodes it again.
fn reencoded<T: Record>(bytes: &[u8]) -> Vec<u8> {
    encode(&decode::<T>(bytes).unwrap_or_else(|e| panic!("{}: {e}", T::WHAT)))
}

#[test]
fn every_frozen_record_decodes_and_encodes_again_to_the_same_bytes() {
    let frozen = frozen();
    assert!(frozen.len() >= 20, "the golden file lost lines");
    for (kind, name, bytes) in &frozen {
        let again = match kind.as_str() {
            "cluster.2" => reencoded::<ClusterRecord>(bytes),
            "association.2" => reencoded::<AssociationRecord>(bytes),
            "index.1" => reencoded::<IndexRecord>(bytes),
            "token.2" => reencoded::<TokenRecord>(bytes),
            "cluster.1" => reencoded::<v1::ClusterRecord>(bytes),
            "association.1" => reencoded::<v1::AssociationRecord>(bytes),
            "token.1" => reencoded::<v1::TokenRecord>(bytes),
            "issuer.1" => reencoded::<IssuerRecord>(bytes),
            "credential.1" => reencoded::<CredentialRecord>(bytes),
            "fingerprint" => continue,
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(hex(&again), hex(bytes), "{kind} {name}");
    }
}

#[test]
fn todays_code_writes_the_frozen_bytes() {
    let frozen = frozen();
    let today = cases();
    assert_eq!(frozen.len(), today.len(), "a case was added or lost");
    for ((kind, name, bytes), (today_kind, today_name, today_bytes)) in frozen.iter().zip(&today) {
        assert_eq!((kind.as_str(), name), (*today_kind, today_name));
        assert_eq!(hex(today_bytes), hex(bytes), "{kind} {name}");
    }
}
