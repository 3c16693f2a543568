//! Upgrades: stores written by older code, opened by today's binary.
//!
//! The schema-1 data is frozen in `migrations/fixtures/schema-1.tsv`
//! (written by the schema-1 binary; see `schema-1.md` beside it), or, for the
//! crash test, built here from the frozen schema-1 record formats. A store
//! written by the last binary before the store owned its record formats is
//! frozen in `schema-3.tsv`, with the answers that binary gave
//! (`schema-3.md`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use pod_identity_store::domain::{
    AssociationId, ClusterName, Namespace, RoleArn, ServiceAccountName, Timestamp,
};
use pod_identity_store::domain::{AwsIdentity, ClusterStatus};
use pod_identity_store::store::migrate::LATEST;
use pod_identity_store::store::records::{encode, v1, IndexRecord, StatusCode};
use pod_identity_store::store::{keys, records};
use serde_json::{json, Value};

use crate::helpers::{command, role, run_to_exit, s, ts, Answer, Client, Server};

const MIGRATION_LINE: &str = "to schema 2 (0002-session-members-and-counters)";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations/fixtures")
        .join(name)
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Writes the frozen schema-1 entries into a new store at `data_dir`.
pub fn load_fixture(data_dir: &Path) {
    load_frozen_store(data_dir, "schema-1.tsv");
}

/// Writes the entries of the frozen store `name` into a new store at `data_dir`.
fn load_frozen_store(data_dir: &Path, name: &str) {
    let db = crate::helpers::open_store_directly(data_dir).unwrap();
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    for line in text.lines() {
        let [tree, key, value] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("fixture line {line:?} is not tree, key, value")
        };
        db.open_tree(tree)
            .unwrap()
            .insert(unhex(key), unhex(value))
            .unwrap();
    }
    db.flush().unwrap();
}

pub fn schema_version(data_dir: &Path) -> u32 {
    let db = crate::helpers::open_store_directly(data_dir).unwrap();
    let bytes = db
        .open_tree(keys::TREE_META)
        .unwrap()
        .get(keys::META_SCHEMA_VERSION)
        .unwrap()
        .unwrap();
    u32::from_be_bytes(bytes.as_ref().try_into().unwrap())
}

fn tree_names(data_dir: &Path) -> Vec<String> {
    let db = crate::helpers::open_store_directly(data_dir).unwrap();
    db.tree_names()
        .iter()
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect()
}

struct Upgrade {
    dir: tempfile::TempDir,
}

impl Upgrade {
    fn new() -> Self {
        Upgrade {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn args(&self, config: &str) -> Vec<OsString> {
        let config_file = self.dir.path().join("config.toml");
        std::fs::write(&config_file, config).unwrap();
        vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            self.data_dir().into(),
            "--config".into(),
            config_file.into(),
        ]
    }

    fn start(&self, config: &str) -> (Server, Client) {
        let server = Server::start(command(&self.args(config), &[]), &self.log()).unwrap();
        let client = Client::new(server.addr);
        (server, client)
    }

    fn migrations_logged(&self) -> usize {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .matches(MIGRATION_LINE)
            .count()
    }
}

/// Sweeping off, so the frozen tokens stay while the test looks at them.
const NO_SWEEP: &str = "[idempotency]\nsweep_interval_seconds = 86400\n";

#[test]
fn a_schema_1_store_is_migrated_once_and_served_with_the_new_members_at_their_defaults() {
    let up = Upgrade::new();
    load_fixture(&up.data_dir());
    let (server, app) = up.start(NO_SWEEP);
    assert_eq!(up.migrations_logged(), 1);

    let a = app
        .describe_association("prod", "a-zs0z0lb770bph08d5")
        .association();
    assert_eq!(
        a,
        json!({
            "clusterName": "prod",
            "namespace": "default",
            "serviceAccount": "app",
            "roleArn": role("app-v2"),
            "associationArn": "arn:aws:eks:us-east-1:123456789012:podidentityassociation/prod/a-zs0z0lb770bph08d5",
            "associationId": "a-zs0z0lb770bph08d5",
            "tags": {"env": "prod"},
            "createdAt": 1795883469.375,
            "modifiedAt": 1795883469.536,
            "disableSessionTags": false,
        })
    );
    let ebs = app
        .describe_association("prod", "a-p45ceds3nvtoc376x")
        .association();
    assert_eq!(s(&ebs, "roleArn"), role("path/ebs-csi"));
    assert_eq!(ts(&ebs, "createdAt"), ts(&ebs, "modifiedAt"));
    let prometheus = app
        .describe_association("staging", "a-b90p31mnz1vb7a420")
        .association();
    assert_eq!(s(&prometheus, "namespace"), "monitoring");

    let prod = app.describe_cluster("prod").cluster();
    assert_eq!(
        (s(&prod, "status"), s(&prod, "version")),
        ("ACTIVE", "1.31")
    );
    assert_eq!(prod["tags"], json!({"team": "platform"}));
    assert_eq!(
        app.describe_cluster("staging").cluster()["status"],
        "UPDATING"
    );
    assert_eq!(app.describe_cluster("empty").cluster()["status"], "ACTIVE");
    let listed = app
        .get("/clusters/prod/pod-identity-associations")
        .ok()
        .clone();
    assert_eq!(listed["associations"].as_array().unwrap().len(), 2);

    // The new members work on old associations.
    let updated = app
        .update_association(
            "staging",
            "a-b90p31mnz1vb7a420",
            &json!({"targetRoleArn": "arn:aws:iam::999988887777:role/target"}),
        )
        .association();
    assert!(updated["externalId"].is_string());
    assert_eq!(ts(&updated, "createdAt"), ts(&prometheus, "createdAt"));

    // A second start runs no step.
    drop(server);
    assert_eq!(schema_version(&up.data_dir()), LATEST);
    assert!(
        !tree_names(&up.data_dir()).contains(&keys::TREE_TOKEN_EXPIRY.to_owned()),
        "schema 3 drops the token_expiry tree"
    );
    let (_server, app) = up.start(NO_SWEEP);
    assert_eq!(up.migrations_logged(), 1, "the migration ran again");
    assert_eq!(
        app.describe_association("prod", "a-zs0z0lb770bph08d5")
            .association(),
        a
    );
    let mut dry_run = up.args(NO_SWEEP);
    dry_run.insert(0, "migrate".into());
    dry_run.push("--dry-run".into());
    drop(_server);
    let exit = run_to_exit(command(&dry_run, &[]));
    assert!(exit.status.success(), "{}", exit.stderr);
    assert!(
        exit.stdout.contains(&format!("schema version {LATEST}"))
            && exit.stdout.contains("no pending migrations"),
        "{}",
        exit.stdout
    );
}

#[test]
fn the_migration_counts_each_clusters_associations_for_the_quota() {
    let up = Upgrade::new();
    load_fixture(&up.data_dir());
    let (_server, app) = up.start("[limits]\nassociations_per_cluster = 2\n");
    let create = |cluster: &str, sa: &str| {
        app.create_association(
            cluster,
            &json!({"namespace": "default", "serviceAccount": sa, "roleArn": role("r")}),
        )
    };
    // prod had 2 associations: full. staging had 1: one more fits.
    let refused = create("prod", "third").error(400, "ResourceLimitExceededException");
    assert!(refused.contains("prod"), "{refused}");
    create("staging", "second").association();
    create("staging", "third").error(400, "ResourceLimitExceededException");
    create("empty", "first").association();
}

#[test]
fn deleting_a_migrated_association_removes_the_tokens_it_was_created_and_updated_with() {
    let up = Upgrade::new();
    load_fixture(&up.data_dir());
    let token_keys = |data_dir: &Path| -> Vec<Vec<u8>> {
        let db = crate::helpers::open_store_directly(data_dir).unwrap();
        // Not collected in the block's last expression: its temporaries
        // (the tree, its iterator) would outlive `db` and hold sled's file
        // while `db`'s drop waits for sled to let go of it.
        let mut found = Vec::new();
        for key in db.open_tree(keys::TREE_TOKENS).unwrap().iter().keys() {
            found.push(key.unwrap().to_vec());
        }
        found
    };
    let is_fixture_token = |key: &Vec<u8>, token: &str| key.ends_with(token.as_bytes());
    let before = token_keys(&up.data_dir());
    assert_eq!(before.len(), 3);
    let (server, app) = up.start(NO_SWEEP);
    app.delete("/clusters/prod/pod-identity-associations/a-zs0z0lb770bph08d5")
        .association();
    app.describe_association("prod", "a-zs0z0lb770bph08d5")
        .error(404, "ResourceNotFoundException");
    drop(server);
    let after = token_keys(&up.data_dir());
    assert!(
        !after
            .iter()
            .any(|k| is_fixture_token(k, "fixture-create-1")),
        "the create token is left"
    );
    assert!(
        !after
            .iter()
            .any(|k| is_fixture_token(k, "fixture-update-1")),
        "the update token is left"
    );
    assert!(
        after
            .iter()
            .any(|k| is_fixture_token(k, "fixture-cluster-1")),
        "another resource's token went too"
    );
}

/// Builds a schema-1 store of `clusters` × `per_cluster` associations from
/// the frozen schema-1 record formats.
fn build_schema_1_store(
    data_dir: &Path,
    clusters: usize,
    per_cluster: usize,
) -> Vec<(String, Vec<String>)> {
    let identity = AwsIdentity::new("us-east-1", "123456789012");
    let db = crate::helpers::open_store_directly(data_dir).unwrap();
    let tree = |name: &str| db.open_tree(name).unwrap();
    let (clusters_tree, associations, index) = (
        tree(keys::TREE_CLUSTERS),
        tree(keys::TREE_ASSOCIATIONS),
        tree(keys::TREE_ASSOCIATION_INDEX),
    );
    let mut built = Vec::new();
    for c in 0..clusters {
        let name = ClusterName::parse("name", &format!("big-{c}")).unwrap();
        let role_arn = RoleArn::parse_in_account("roleArn", &role("r"), &identity).unwrap();
        let cluster = v1::ClusterRecord {
            name: name.to_string(),
            role_arn: role_arn.to_string(),
            version: "1.30".into(),
            tags: Default::default(),
            created_at: 1_700_000_000_000,
            status: StatusCode::of(ClusterStatus::Active),
            activate_at: None,
            generation: per_cluster as u64,
        };
        clusters_tree
            .insert(keys::cluster(&name), encode(&cluster))
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..per_cluster {
            let id = AssociationId::generate();
            let namespace = Namespace::parse("default").unwrap();
            let service_account = ServiceAccountName::parse(&format!("sa-{i}")).unwrap();
            let record = v1::AssociationRecord {
                cluster: name.to_string(),
                id: id.to_string(),
                namespace: namespace.to_string(),
                service_account: service_account.to_string(),
                role_arn: role_arn.to_string(),
                tags: Default::default(),
                created_at: 1_700_000_000_000 + i as i64,
                modified_at: 1_700_000_000_000 + i as i64,
            };
            associations
                .insert(keys::association(&name, &id), encode(&record))
                .unwrap();
            index
                .insert(
                    keys::association_index(&name, &namespace, &service_account),
                    records::encode(&IndexRecord::new(&id)),
                )
                .unwrap();
            ids.push(id.to_string());
        }
        built.push((name.to_string(), ids));
    }
    tree(keys::TREE_META)
        .insert(keys::META_SCHEMA_VERSION, &1u32.to_be_bytes())
        .unwrap();
    db.flush().unwrap();
    built
}

/// Every association ID of `cluster`, through ListPodIdentityAssociations.
fn list_all(app: &Client, cluster: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..1_000 {
        let path = match &next {
            Some(token) => {
                format!("/clusters/{cluster}/pod-identity-associations?nextToken={token}")
            }
            None => format!("/clusters/{cluster}/pod-identity-associations"),
        };
        let page = app.get(&path).ok().clone();
        for a in page["associations"].as_array().unwrap() {
            ids.push(s(a, "associationId").to_owned());
        }
        match page["nextToken"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => return ids,
        }
    }
    panic!("more than 1,000 pages");
}

#[test]
fn a_crash_in_the_middle_of_the_migration_leaves_a_store_the_next_start_migrates() {
    const CLUSTERS: usize = 3;
    const PER_CLUSTER: usize = 3_000;
    let up = Upgrade::new();
    let built = build_schema_1_store(&up.data_dir(), CLUSTERS, PER_CLUSTER);
    let config = format!("[limits]\nassociations_per_cluster = {PER_CLUSTER}\n");
    // Kill the server at moments spread over its migration, a few times.
    let mut killed_mid_migration = 0;
    for round in 0..4u64 {
        let seen = up.migrations_logged();
        let mut child = command(&up.args(&config), &[])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(up.log())
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while up.migrations_logged() == seen && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(round * 10));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if schema_version(&up.data_dir()) == 1 {
            killed_mid_migration += 1;
        } else {
            break;
        }
    }
    assert!(
        killed_mid_migration > 0,
        "no kill landed during the migration"
    );

    let (_server, app) = up.start(&config);
    for (cluster, ids) in &built {
        let mut listed = list_all(&app, cluster);
        listed.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(listed.len(), PER_CLUSTER, "cluster {cluster}");
        assert_eq!(listed, expected, "cluster {cluster}");
        let one = app
            .describe_association(cluster, &ids[PER_CLUSTER / 2])
            .association();
        assert_eq!(one["disableSessionTags"], false);
        // The counter was computed by the migration that completed: the cluster is full.
        app.create_association(
            cluster,
            &json!({"namespace": "x", "serviceAccount": "y", "roleArn": role("r")}),
        )
        .error(400, "ResourceLimitExceededException");
    }
    drop(_server);
    assert_eq!(schema_version(&up.data_dir()), LATEST);
}

/// Moves the frozen tokens' expiry (24 hours after they were written) to an
/// hour from now, so that they are live whenever the test runs. Their
/// schema-1 expiry entries are left as they are: schema 3 drops that tree.
fn renew_fixture_tokens(data_dir: &Path) {
    let db = crate::helpers::open_store_directly(data_dir).unwrap();
    let tokens = db.open_tree(keys::TREE_TOKENS).unwrap();
    let later = Timestamp::now().plus_seconds(3_600);
    for entry in tokens.iter() {
        let (key, bytes) = entry.unwrap();
        let mut token: v1::TokenRecord = records::decode(&bytes).unwrap();
        token.expires_at = later.as_millis();
        tokens.insert(&key, encode(&token)).unwrap();
    }
    db.flush().unwrap();
}

#[test]
fn client_request_tokens_saved_before_the_upgrade_still_replay_their_first_answers() {
    let up = Upgrade::new();
    load_fixture(&up.data_dir());
    renew_fixture_tokens(&up.data_dir());
    let (_server, app) = up.start(NO_SWEEP);
    assert_eq!(up.migrations_logged(), 1);
    // The requests of migrations/fixtures/schema-1.md, sent again.
    let created = app
        .create_association(
            "prod",
            &json!({"namespace": "default", "serviceAccount": "app", "roleArn": role("app-v1"),
                    "tags": {"env": "prod"}, "clientRequestToken": "fixture-create-1"}),
        )
        .association();
    assert_eq!(s(&created, "associationId"), "a-zs0z0lb770bph08d5");
    assert_eq!(
        s(&created, "roleArn"),
        role("app-v1"),
        "not the first answer"
    );
    assert_eq!(
        (ts(&created, "createdAt"), ts(&created, "modifiedAt")),
        (1795883469.375, 1795883469.375)
    );
    let updated = app
        .update_association(
            "prod",
            "a-zs0z0lb770bph08d5",
            &json!({"roleArn": role("app-v2"), "clientRequestToken": "fixture-update-1"}),
        )
        .association();
    assert_eq!(ts(&updated, "modifiedAt"), 1795883469.536);
    let cluster = app
        .create_cluster_with(&json!({"name": "prod", "roleArn": role("eks-cluster"), "resourcesVpcConfig": {},
                                     "version": "1.31", "tags": {"team": "platform"}, "clientRequestToken": "fixture-cluster-1"}))
        .cluster();
    assert_eq!(
        cluster["status"], "CREATING",
        "CreateCluster's first answer said CREATING"
    );
    // Another request with an old token is still told apart.
    let refused = app
        .create_association(
            "prod",
            &json!({"namespace": "default", "serviceAccount": "other", "roleArn": role("app-v1"),
                    "clientRequestToken": "fixture-create-1"}),
        )
        .error(400, "InvalidParameterException");
    assert!(refused.contains("fixture-create-1"), "{refused}");
}

#[test]
fn a_token_expiry_tree_left_by_a_crash_after_step_3_is_dropped_at_the_next_start() {
    let up = Upgrade::new();
    drop(up.start(NO_SWEEP));
    {
        // Step 3 wrote its version; the crash came before it dropped the tree.
        let db = crate::helpers::open_store_directly(&up.data_dir()).unwrap();
        let expiry = db.open_tree(keys::TREE_TOKEN_EXPIRY).unwrap();
        expiry.insert(b"left over", &[]).unwrap();
        db.flush().unwrap();
    }
    assert!(tree_names(&up.data_dir()).contains(&keys::TREE_TOKEN_EXPIRY.to_owned()));
    let (server, app) = up.start(NO_SWEEP);
    app.given_cluster("c1");
    drop(server);
    assert!(!tree_names(&up.data_dir()).contains(&keys::TREE_TOKEN_EXPIRY.to_owned()));
    assert_eq!(schema_version(&up.data_dir()), LATEST);
}

/// A store written by the binary before the store owned its record formats
/// (`migrations/fixtures/schema-3.md`) opens with one migration (schema 4
/// gives every cluster a token issuer) and answers every read, and every
/// request sent again with its clientRequestToken, with the very bytes that
/// binary answered, but for the issuer each cluster answer now carries.
#[test]
fn a_store_written_by_the_schema_3_binary_is_served_byte_for_byte_as_it_was() {
    let up = Upgrade::new();
    load_frozen_store(&up.data_dir(), "schema-3.tsv");
    let answers: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("schema-3-answers.json")).unwrap())
            .unwrap();
    let list = |name: &str| answers[name].as_array().unwrap().clone();
    let (reads, replays) = (list("reads"), list("replays"));
    assert!(reads.len() >= 10 && replays.len() == 5);

    let (server, app) = up.start(NO_SWEEP);
    assert_eq!(up.migrations_logged(), 0, "no step before schema 4 runs");
    assert_eq!(
        std::fs::read_to_string(up.log())
            .unwrap()
            .matches("0004-cluster-token-issuers")
            .count(),
        1
    );
    // The answer as the schema-3 binary gave it: byte for byte, except that
    // a cluster now also names its token issuer (schema 4), which is checked
    // and then set aside.
    let as_before = |what: &str, answer: &Answer, frozen: &str| {
        assert_eq!(answer.status, 200, "{what}: {}", answer.text);
        let mut body = answer.body.clone();
        match body.get_mut("cluster").and_then(Value::as_object_mut) {
            Some(cluster) => {
                // A replayed CreateCluster answers the saved cluster, as it
                // was then: without one.
                if let Some(identity) = cluster.remove("identity") {
                    assert!(
                        s(&identity["oidc"], "issuer").starts_with("http://127.0.0.1:"),
                        "{what}: {identity}"
                    );
                }
                let frozen: Value = serde_json::from_str(frozen).unwrap();
                assert_eq!(body, frozen, "{what}");
            }
            None => assert_eq!(answer.text, frozen, "{what}"),
        }
    };
    for read in &reads {
        let answer = app.get(s(read, "path"));
        as_before(s(read, "path"), &answer, s(read, "answer"));
    }
    for replay in &replays {
        let (method, path) = (s(replay, "method"), s(replay, "path"));
        let answer = app.send_json(method, path, &replay["request"]);
        as_before(&format!("{method} {path}"), &answer, s(replay, "answer"));
    }
    // The frozen statuses, one of each kind stored.
    let status = |name: &str| app.describe_cluster(name).cluster()["status"].clone();
    assert_eq!(
        ["prod", "fresh", "broken", "waiting"].map(status),
        ["ACTIVE", "ACTIVE", "FAILED", "PENDING"]
    );
    // The frozen members, changed as usual: the ebs association keeps its
    // policy and target role when only its role changes.
    let updated = app
        .update_association(
            "prod",
            "a-922vlrt1jq5uvwm2q",
            &json!({"roleArn": role("ebs-csi-v3")}),
        )
        .association();
    assert_eq!(
        s(&updated, "targetRoleArn"),
        "arn:aws:iam::999988887777:role/ebs"
    );
    assert_eq!(updated["disableSessionTags"], true);
    assert!(s(&updated, "policy").contains("s3:DeleteObject"));
    drop(server);

    let mut check = up.args(NO_SWEEP);
    check.insert(0, "check".into());
    let checked = run_to_exit(command(&check, &[]));
    assert!(
        checked.status.success() && checked.stdout.contains("no problems found"),
        "{}\n{}",
        checked.stdout,
        checked.stderr
    );
    assert!(
        checked.stdout.contains("schema version 4")
            && checked.stdout.contains("clusters: 4")
            && checked.stdout.contains("associations: 3")
            && checked.stdout.contains("tokens: 5 (0 expired"),
        "{}",
        checked.stdout
    );
}

#[test]
fn the_upgrade_gives_every_cluster_a_token_issuer_whose_tokens_get_credentials() {
    let up = Upgrade::new();
    load_fixture(&up.data_dir());
    let (server, app) = up.start(NO_SWEEP);
    let log = std::fs::read_to_string(up.log()).unwrap();
    assert!(
        log.contains("to schema 4 (0004-cluster-token-issuers)"),
        "{log}"
    );
    // The step made them, not the safety net for clusters that came without one.
    assert!(!log.contains("had no token issuer"), "{log}");
    let issuer = |app: &Client, name: &str| {
        s(
            &app.describe_cluster(name).cluster()["identity"]["oidc"],
            "issuer",
        )
        .to_owned()
    };
    let ids: Vec<String> = ["prod", "staging", "empty"]
        .iter()
        .map(|name| issuer(&app, name).rsplit('/').next().unwrap().to_owned())
        .collect();
    assert!(ids.iter().all(|id| id.len() == 32), "{ids:?}");
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );

    // The migrated association default/app of prod, role app-v2.
    let token = crate::eks_auth::pod_token(&app, "prod", "default", "app");
    let answer = crate::eks_auth::assume_role(&app, "prod", &token);
    let arn = s(&answer.ok()["assumedRoleUser"], "arn");
    assert!(arn.contains(":assumed-role/app-v2/eks-prod-"), "{arn}");

    // The keys are kept: the next start runs no step and takes the same token.
    drop(server);
    let (_server, app) = up.start(NO_SWEEP);
    assert_eq!(
        issuer(&app, "prod").rsplit('/').next().unwrap(),
        ids[0].as_str()
    );
    crate::eks_auth::assume_role(&app, "prod", &token).ok();
    let log = std::fs::read_to_string(up.log()).unwrap();
    assert_eq!(
        log.matches("0004-cluster-token-issuers").count(),
        1,
        "{log}"
    );
}
