//! The operator's tools: `check` on a stopped store, `GET /admin/v1/export`
//! on a running one, and `import` of an export into an empty store.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pod_identity_store::domain::{
    Association, AssociationId, ClusterName, Namespace, RoleArn, ServiceAccountName, Tags,
    Timestamp,
};
use pod_identity_store::store::keys;
use pod_identity_store::store::migrate::LATEST;
use pod_identity_store::store::records::{encode, AssociationRecord, IndexRecord};
use serde_json::{json, Value};

use crate::helpers::{
    cluster_arn, command, newest_snapshot_lsn, role, run_to_exit, s, stored_counts, Client, Exit,
    TestApp, START_TIMEOUT,
};

fn run(args: &[&std::ffi::OsStr]) -> Exit {
    run_to_exit(command(args, &[]))
}

fn check(data_dir: &Path) -> Exit {
    run(&[
        "check".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
    ])
}

fn import(data_dir: &Path, file: &Path) -> Exit {
    run(&[
        "import".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
        file.as_os_str(),
    ])
}

/// A successful exit; the test fails showing the output otherwise.
#[track_caller]
fn assert_success(exit: &Exit) {
    assert!(
        exit.status.success(),
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        exit.status,
        exit.stdout,
        exit.stderr
    );
}

/// A refusal: non-zero, and `what` on stderr, in one line without a panic.
#[track_caller]
fn assert_refused(exit: &Exit, what: &str) {
    assert!(!exit.status.success(), "it succeeded: {}", exit.stdout);
    let lines: Vec<&str> = exit
        .stderr
        .lines()
        .filter(|l| !l.contains(" INFO "))
        .collect();
    assert_eq!(lines.len(), 1, "not one line: {}", exit.stderr);
    assert!(lines[0].contains(what), "{}", exit.stderr);
    assert!(!exit.stderr.contains("panicked"), "{}", exit.stderr);
}

/// The record bytes `check` reported (its `record bytes: N ...` line).
fn record_bytes(checked: &Exit) -> u64 {
    checked
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("record bytes: "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no record bytes line in {}", checked.stdout))
}

/// Asserts that the files in a data dir take at most `limit` times the bytes
/// of the records that its `check` report counts.
#[track_caller]
fn assert_data_dir_at_most(data_dir: &Path, checked: &Exit, limit: f64, what: &str) {
    let record_bytes = record_bytes(checked);
    let dir_bytes: u64 = std::fs::read_dir(data_dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum();
    let ratio = dir_bytes as f64 / record_bytes as f64;
    assert!(
        ratio <= limit,
        "{what} left {dir_bytes} bytes in the data dir for {record_bytes} bytes of records ({ratio:.2}x)"
    );
}

/// The `problem:` lines of a check's report.
fn problems(exit: &Exit) -> Vec<&str> {
    exit.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("problem: "))
        .collect()
}

/// Every entry of every tree of the stopped store in `data_dir`.
///
/// Compared as entries, not file bytes: sled rewrites its own recovery
/// files (its snapshot, the end of its log) whenever it opens a store, also
/// when nothing is written.
fn entries(data_dir: &Path) -> BTreeMap<(Vec<u8>, Vec<u8>), Vec<u8>> {
    let db = crate::helpers::open_store_directly(data_dir).expect("the store opens");
    let mut found = BTreeMap::new();
    for name in db.tree_names() {
        for entry in db.open_tree(&name).unwrap().iter() {
            let (key, value) = entry.unwrap();
            found.insert((name.to_vec(), key.to_vec()), value.to_vec());
        }
    }
    found
}

/// Two clusters and three associations with every member set somewhere:
/// tags (with characters JSON must escape), session members, a changed
/// role, a cluster in a status other than ACTIVE, a client request token.
fn populate(app: &Client) {
    app.given_cluster("alpha");
    app.tag_resource(&cluster_arn("alpha"), &json!({"env": "dev"}))
        .ok();
    app.create_cluster_with(&json!({
        "name": "beta",
        "roleArn": role("eks-cluster-role"),
        "resourcesVpcConfig": {},
        "version": "1.30",
        "tags": {"team": "blue", "cost-center": "42"},
    }))
    .cluster();
    app.given_association("alpha", "default", "app", &role("app"));
    let rich = app
        .create_association(
            "beta",
            &json!({
                "namespace": "payments",
                "serviceAccount": "api.v2",
                "roleArn": role("payments"),
                "tags": {"owner": "team-a", "quote": "a \"b\" \\ c ü"},
                "disableSessionTags": true,
                "targetRoleArn": "arn:aws:iam::111122223333:role/target",
                "policy": r#"{"Version":"2012-10-17","Statement":[]}"#,
                "clientRequestToken": "create-rich",
            }),
        )
        .association();
    app.tag_resource(s(&rich, "associationArn"), &json!({"added": "later"}))
        .ok();
    let worker = app.given_association("beta", "default", "worker", &role("worker-v1"));
    app.update_association(
        "beta",
        s(&worker, "associationId"),
        &json!({"roleArn": role("worker-v2"), "clientRequestToken": "move-to-v2"}),
    )
    .association();
    app.set_cluster_status("beta", "UPDATING").cluster();
}

/// Everything a client can read: every cluster (Describe, ListTags) and
/// every association (List, Describe, ListTags).
fn everything(app: &Client) -> Value {
    let names = app.list_clusters("").ok()["clusters"].clone();
    let mut clusters = Vec::new();
    for name in names.as_array().expect("a list of names") {
        let name = name.as_str().expect("a name");
        let listed = app.list_all_associations(name, &[]);
        let associations: Vec<Value> = listed
            .iter()
            .map(|summary| {
                let described = app
                    .describe_association(name, s(summary, "associationId"))
                    .association();
                let tags = app.list_tags(s(summary, "associationArn")).ok().clone();
                json!({"summary": summary, "described": described, "tags": tags})
            })
            .collect();
        clusters.push(json!({
            // An imported cluster gets a new token issuer (not in the export).
            "described": app.describe_cluster(name).cluster_without_issuer(),
            "tags": app.list_tags(&cluster_arn(name)).ok().clone(),
            "associations": associations,
        }));
    }
    json!({"names": names, "clusters": clusters})
}

/// The export without its header, which holds the time of the export.
fn records(export: &str) -> Vec<&str> {
    export.lines().skip(1).collect()
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_reports_the_counts_of_a_clean_stopped_store_and_changes_nothing() {
    let mut app = TestApp::spawn();
    populate(&app);
    app.stop();
    let before = entries(&app.data_dir);

    let exit = check(&app.data_dir);
    assert_success(&exit);
    for line in [
        format!("schema version {LATEST}").as_str(),
        "clusters: 2",
        "associations: 3",
        "index entries: 3",
        "tokens: 2 (0 expired, not swept yet)",
        "no problems found",
    ] {
        assert!(exit.stdout.contains(line), "{line:?} in {}", exit.stdout);
    }
    assert_eq!(entries(&app.data_dir), before, "check changed the store");

    // The record bytes are every key and value of the seven trees, counted
    // here straight from sled.
    let reported = record_bytes(&exit);
    let db = crate::helpers::open_store_directly(&app.data_dir).unwrap();
    let mut counted = 0u64;
    for tree in [
        keys::TREE_META,
        keys::TREE_CLUSTERS,
        keys::TREE_ASSOCIATIONS,
        keys::TREE_ASSOCIATION_INDEX,
        keys::TREE_TOKENS,
        keys::TREE_ISSUERS,
        keys::TREE_CREDENTIALS,
    ] {
        for entry in db.open_tree(tree).unwrap().iter() {
            let (key, value) = entry.unwrap();
            counted += (key.len() + value.len()) as u64;
        }
    }
    assert_eq!(reported, counted, "{}", exit.stdout);
}

#[test]
fn check_names_an_association_that_lost_its_index_entry() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("app"));
    app.stop();
    {
        let db = crate::helpers::open_store_directly(&app.data_dir).unwrap();
        let index = db.open_tree(keys::TREE_ASSOCIATION_INDEX).unwrap();
        assert!(index.remove(b"c1\0default\0app").unwrap().is_some());
        db.flush().unwrap();
    }

    let exit = check(&app.data_dir);
    assert!(!exit.status.success(), "{}", exit.stdout);
    assert!(exit.stdout.contains("index entries: 0"), "{}", exit.stdout);
    assert_eq!(
        problems(&exit),
        [format!(
            "association c1/{} (namespace default, service account app) has no index entry",
            s(&a, "associationId")
        )]
    );
    assert!(
        exit.stderr.contains("found 1 problem(s)"),
        "{}",
        exit.stderr
    );
}

#[test]
fn check_names_a_token_left_under_a_cluster_that_is_gone() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    app.create_cluster_with(&json!({
        "name": "c2",
        "roleArn": role("eks-cluster-role"),
        "resourcesVpcConfig": {},
        "clientRequestToken": "create-c2",
    }))
    .ok();
    app.stop();
    {
        // What a deletion that forgot the cluster's tokens would leave.
        let db = crate::helpers::open_store_directly(&app.data_dir).unwrap();
        let clusters = db.open_tree(keys::TREE_CLUSTERS).unwrap();
        assert!(clusters.remove(b"c2").unwrap().is_some());
        let issuers = db.open_tree(keys::TREE_ISSUERS).unwrap();
        assert!(issuers.remove(b"c2").unwrap().is_some());
        db.flush().unwrap();
    }

    let exit = check(&app.data_dir);
    assert!(!exit.status.success(), "{}", exit.stdout);
    assert!(
        exit.stdout.contains("tokens: 1 (0 expired, not swept yet)"),
        "{}",
        exit.stdout
    );
    assert_eq!(
        problems(&exit),
        ["token c2/cluster.create/create-c2 belongs to cluster 'c2', which does not exist"]
    );
}

#[test]
fn check_names_a_token_whose_association_is_gone() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let created = app
        .create_association(
            "c1",
            &json!({"namespace": "ns", "serviceAccount": "sa", "roleArn": role("a"),
                    "clientRequestToken": "create-1"}),
        )
        .association();
    let id = s(&created, "associationId").to_owned();
    app.update_association(
        "c1",
        &id,
        &json!({"roleArn": role("b"), "clientRequestToken": "update-1"}),
    )
    .association();
    app.stop();
    {
        // What a Delete that forgot the association's tokens would leave.
        let db = crate::helpers::open_store_directly(&app.data_dir).unwrap();
        let cluster = ClusterName::parse("name", "c1").unwrap();
        let associations = db.open_tree(keys::TREE_ASSOCIATIONS).unwrap();
        let key = keys::association(&cluster, &AssociationId::parse(&id).unwrap());
        assert!(associations.remove(key).unwrap().is_some());
        let index = db.open_tree(keys::TREE_ASSOCIATION_INDEX).unwrap();
        index.clear().unwrap();
        db.flush().unwrap();
    }
    let exit = check(&app.data_dir);
    assert!(!exit.status.success(), "{}", exit.stdout);
    let problems = problems(&exit);
    let expected = format!(
        "token c1/association.create/create-1 answers with association c1/{id}, which no longer exists"
    );
    assert!(problems.contains(&expected.as_str()), "{problems:?}");
    assert!(
        exit.stdout.lines().any(|l| l.contains(&format!(
            "token c1/association.update/{id}/update-1 is of association c1/{id}, which no longer exists"
        ))),
        "{}",
        exit.stdout
    );
}

#[test]
fn check_names_every_problem_of_a_store_damaged_in_several_ways() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    app.given_association("c1", "default", "app", &role("app"));
    app.stop();
    let identity = pod_identity_store::domain::AwsIdentity::new("us-east-1", "123456789012");
    let orphan = Association {
        cluster: ClusterName::parse("name", "ghost").unwrap(),
        id: AssociationId::parse("a-00000000000000000").unwrap(),
        namespace: Namespace::parse("default").unwrap(),
        service_account: ServiceAccountName::parse("app").unwrap(),
        role_arn: RoleArn::parse_in_account("roleArn", &role("app"), &identity).unwrap(),
        tags: Tags::default(),
        created_at: Timestamp::from_millis(1),
        modified_at: Timestamp::from_millis(1),
        disable_session_tags: false,
        target_role_arn: None,
        external_id: None,
        policy: None,
    };
    {
        let db = crate::helpers::open_store_directly(&app.data_dir).unwrap();
        let associations = db.open_tree(keys::TREE_ASSOCIATIONS).unwrap();
        let index = db.open_tree(keys::TREE_ASSOCIATION_INDEX).unwrap();
        // An association whose cluster does not exist (with its index entry).
        associations
            .insert(
                keys::association(&orphan.cluster, &orphan.id),
                encode(&AssociationRecord::new(&orphan, None)),
            )
            .unwrap();
        index
            .insert(
                keys::association_index(
                    &orphan.cluster,
                    &orphan.namespace,
                    &orphan.service_account,
                ),
                encode(&IndexRecord::new(&orphan.id)),
            )
            .unwrap();
        // An index entry pointing at nothing.
        index
            .insert(
                b"c1\0default\0gone",
                encode(&IndexRecord::new(
                    &AssociationId::parse("a-zzzzzzzzzzzzzzzzz").unwrap(),
                )),
            )
            .unwrap();
        // A token that does not decode.
        db.open_tree(keys::TREE_TOKENS)
            .unwrap()
            .insert(b"c1\0association.create\0t", b"\x02garbage".to_vec())
            .unwrap();
        db.flush().unwrap();
    }

    let exit = check(&app.data_dir);
    assert!(!exit.status.success(), "{}", exit.stdout);
    let problems = problems(&exit);
    let expected = [
        "association ghost/a-00000000000000000 (namespace default, service account app) belongs \
         to cluster ghost, which does not exist",
        "index entry c1/default/gone points at association c1/a-zzzzzzzzzzzzzzzzz, which does \
         not exist",
        "token c1/association.create/t: a stored record is damaged: token record does not decode",
    ];
    assert_eq!(problems.len(), expected.len(), "{}", exit.stdout);
    for (problem, expected) in problems.iter().zip(expected) {
        assert!(
            problem.starts_with(expected),
            "{problem:?}\n{}",
            exit.stdout
        );
    }
}

#[test]
fn check_names_a_cluster_whose_count_disagrees_with_its_associations() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let a = app.given_association("c1", "default", "app", &role("app"));
    app.stop();
    {
        // Removing an association and its index entry but not the count.
        let db = crate::helpers::open_store_directly(&app.data_dir).unwrap();
        let key = keys::association(
            &ClusterName::parse("name", "c1").unwrap(),
            &AssociationId::parse(s(&a, "associationId")).unwrap(),
        );
        db.open_tree(keys::TREE_ASSOCIATIONS)
            .unwrap()
            .remove(key)
            .unwrap();
        db.open_tree(keys::TREE_ASSOCIATION_INDEX)
            .unwrap()
            .remove(b"c1\0default\0app")
            .unwrap();
        db.flush().unwrap();
    }
    let exit = check(&app.data_dir);
    assert_eq!(
        problems(&exit),
        ["cluster c1 counts 1 associations but has 0"]
    );
}

#[test]
fn check_refuses_a_store_in_use_in_one_line() {
    let app = TestApp::spawn();
    assert_refused(&check(&app.data_dir), "in use by another process");
}

#[test]
fn check_refuses_a_directory_without_a_store_and_does_not_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    assert_refused(&check(&data_dir), "there is no store at");
    assert!(!data_dir.exists());
}

#[test]
fn check_refuses_an_older_schema_naming_migrate_and_leaves_it_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    crate::upgrade::load_fixture(&data_dir);
    assert_refused(&check(&data_dir), "pod-identity-store migrate");
    assert_eq!(crate::upgrade::schema_version(&data_dir), 1);
}

#[test]
fn an_export_imported_into_a_new_store_serves_every_cluster_and_association_identically() {
    let app = TestApp::spawn();
    populate(&app);
    let export = app.export();
    let lines: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["format"], "pod-identity-store-export");
    assert_eq!(lines[0]["version"], 1);
    assert_eq!(lines[0]["schema"], LATEST);
    assert_eq!(
        lines.last().unwrap(),
        &json!({"type": "end", "clusters": 2, "associations": 3})
    );

    let mut copy = TestApp::unstarted();
    let file = write_file(copy.data_dir.parent().unwrap(), "export.ndjson", &export);
    let imported = import(&copy.data_dir, &file);
    assert_success(&imported);
    assert!(
        imported
            .stdout
            .contains("clusters: 2, associations: 3, index entries: 3"),
        "{}",
        imported.stdout
    );
    // Stderr is a file here, not a terminal: no progress bar.
    assert!(!imported.stderr.contains('\r'), "{:?}", imported.stderr);
    let checked = check(&copy.data_dir);
    assert_success(&checked);
    assert!(checked.stdout.contains("tokens: 0"), "{}", checked.stdout);

    copy.start();
    assert_eq!(everything(&copy), everything(&app));
    // The export holds no signing keys: each imported cluster got a new issuer.
    for name in copy.list_clusters("").ok()["clusters"].as_array().unwrap() {
        let cluster = copy.describe_cluster(name.as_str().unwrap()).cluster();
        assert!(
            cluster["identity"]["oidc"]["issuer"].is_string(),
            "{cluster}"
        );
    }
    assert_eq!(records(&copy.export()), records(&export));
}

/// An export of `clusters` clusters and `associations` associations made
/// here, not by a server: many more than a server would create in a test.
fn generated_export(clusters: usize, associations: usize) -> String {
    const AT: i64 = 1_700_000_000_000;
    let mut lines = vec![json!({
        "format": "pod-identity-store-export", "version": 1, "schema": 2,
        "exportedAt": AT, "region": "us-east-1", "accountId": "123456789012",
    })];
    for k in 0..clusters {
        lines.push(json!({
            "type": "cluster", "name": format!("c{k}"), "roleArn": role("eks"),
            "version": "1.33", "tags": {}, "createdAt": AT, "status": "ACTIVE",
            "activateAt": null,
        }));
    }
    for i in 0..associations {
        lines.push(json!({
            "type": "association", "clusterName": format!("c{}", i % clusters),
            "associationId": format!("a-{i:017}"), "namespace": "bulk",
            "serviceAccount": format!("sa-{i}"), "roleArn": role("app"), "tags": {},
            "createdAt": AT, "modifiedAt": AT, "disableSessionTags": false,
            "targetRoleArn": null, "externalId": null, "policy": null,
        }));
    }
    lines.push(json!({"type": "end", "clusters": clusters, "associations": associations}));
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn a_large_import_is_written_whole() {
    let count = 12_345;
    let mut app = TestApp::unstarted();
    let file = write_file(
        app.data_dir.parent().unwrap(),
        "bulk.ndjson",
        &generated_export(3, count),
    );
    let imported = import(&app.data_dir, &file);
    assert_success(&imported);
    // sled writes its recovery snapshot only when it opens a store, and
    // replays its log from there at the next open: the import ends by
    // writing one, so that the server's first start does not replay the
    // whole import. (Before `check`, which opens the store too.)
    let data_file = std::fs::metadata(app.data_dir.join("db")).unwrap().len();
    let snapshot = newest_snapshot_lsn(&app.data_dir);
    assert!(
        snapshot >= data_file / 2,
        "the newest recovery snapshot covers the log up to {snapshot} of a {data_file}-byte data file"
    );
    let checked = check(&app.data_dir);
    assert_success(&checked);
    assert!(
        checked.stdout.contains(&format!("associations: {count}")),
        "{}",
        checked.stdout
    );
    assert!(
        checked.stdout.contains(&format!("index entries: {count}")),
        "{}",
        checked.stdout
    );
    // The import writes each tree in three passes, with sled cleaning its
    // log as it goes. How much the cleaning achieves depends on how much CPU
    // sled's flush thread gets: the data dir came out at 1.7x-3.1x the bytes
    // of the records here in debug builds, in steps of one 512 KiB segment
    // (0.28x), with up to four tests like this one at once. Without the
    // cleaning it is 3.63x in every run (4.44x in one pass). The passes
    // alone are tested in `store::backup`.
    assert_data_dir_at_most(&app.data_dir, &checked, 3.4, "the import");
    // The import's writes are counted like any others: a data file later
    // cut back to before them is refused (`durable-writes`, checked at start).
    let witnessed: u64 = std::fs::read_to_string(app.data_dir.join("durable-writes"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(witnessed > 0, "the import's writes were not counted");
    app.start();
    for i in [0, 9_999, 10_000, count - 1] {
        let described = app
            .client()
            .describe_association(&format!("c{}", i % 3), &format!("a-{i:017}"));
        assert_eq!(described.status, 200, "{described:?}");
        assert_eq!(
            described.body["association"]["serviceAccount"],
            format!("sa-{i}")
        );
    }
}

#[test]
fn a_store_left_by_an_unfinished_import_is_refused_and_checked_as_such() {
    let app = TestApp::unstarted();
    let file = write_file(
        app.data_dir.parent().unwrap(),
        "bulk.ndjson",
        &generated_export(1, 3),
    );
    assert_success(&import(&app.data_dir, &file));
    {
        // As an import leaves it when it stops before its end.
        let db = crate::helpers::open_store_directly(&app.data_dir).unwrap();
        db.open_tree(keys::TREE_META)
            .unwrap()
            .insert(keys::META_IMPORT_UNFINISHED, &b"1"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let checked = check(&app.data_dir);
    assert!(
        problems(&checked)
            .iter()
            .any(|p| p.starts_with("an import into this store did not finish")),
        "{}",
        checked.stdout
    );
    let served = run_to_exit(command(
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data-dir".as_ref(),
            app.data_dir.as_os_str(),
        ],
        &[],
    ));
    assert_refused(&served, "an import into it did not finish");
}

#[test]
fn import_refuses_a_store_that_is_not_empty_and_leaves_it_as_it_was() {
    let mut app = TestApp::spawn();
    populate(&app);
    let export = app.export();
    app.stop();
    let file = write_file(app.data_dir.parent().unwrap(), "export.ndjson", &export);
    let before = entries(&app.data_dir);

    let exit = import(&app.data_dir, &file);
    assert_refused(&exit, "is not empty (clusters: 2, associations: 3)");
    assert!(
        exit.stderr.contains("choose a new --data-dir"),
        "{}",
        exit.stderr
    );
    assert_eq!(entries(&app.data_dir), before);
}

#[test]
fn import_refuses_a_malformed_line_naming_it_and_writes_nothing() {
    let source = TestApp::spawn();
    populate(&source);
    let export = source.export();
    let mut lines: Vec<&str> = export.lines().collect();
    let cut = &lines[3][..lines[3].len() / 2];
    lines[3] = cut;
    let broken = lines.join("\n") + "\n";

    // Into a directory with no store: none is created.
    let fresh = TestApp::unstarted();
    let file = write_file(fresh.data_dir.parent().unwrap(), "broken.ndjson", &broken);
    let exit = import(&fresh.data_dir, &file);
    assert_refused(&exit, "line 4: not valid JSON");
    assert!(
        exit.stderr.contains("nothing was imported"),
        "{}",
        exit.stderr
    );
    assert!(!fresh.data_dir.exists());

    // Into an empty store: it stays empty.
    let mut empty = TestApp::spawn();
    empty.stop();
    let exit = import(&empty.data_dir, &file);
    assert_refused(&exit, "line 4");
    let counts = stored_counts(&empty.data_dir);
    assert_eq!(
        (counts.clusters, counts.associations, counts.index),
        (0, 0, 0)
    );
    assert_success(&import(
        &empty.data_dir,
        &write_file(empty.data_dir.parent().unwrap(), "whole.ndjson", &export),
    ));
}

#[test]
fn import_refuses_a_file_cut_short_at_a_line_boundary() {
    let source = TestApp::spawn();
    populate(&source);
    let export = source.export();
    let lines: Vec<&str> = export.lines().collect();
    let short = lines[..lines.len() - 1].join("\n") + "\n";
    let fresh = TestApp::unstarted();
    let file = write_file(fresh.data_dir.parent().unwrap(), "short.ndjson", &short);
    assert_refused(
        &import(&fresh.data_dir, &file),
        "without the export's end line",
    );
    assert!(!fresh.data_dir.exists());
}

/// An export file of clusters `w0`…, and `bulk` with `bulk` associations,
/// written by hand: a large store to start from, made in one import
/// rather than thousands of requests.
fn bulk_export(writers: usize, bulk: usize) -> String {
    let mut lines = vec![json!({
        "format": "pod-identity-store-export", "version": 1, "schema": 2, "exportedAt": 0,
        "region": "us-east-1", "accountId": "123456789012",
    })];
    let names: Vec<String> = std::iter::once("bulk".to_owned())
        .chain((0..writers).map(|w| format!("w{w}")))
        .collect();
    for name in &names {
        lines.push(json!({
            "type": "cluster", "name": name, "roleArn": role("eks-cluster-role"),
            "version": "1.33", "tags": {}, "createdAt": 1_700_000_000_000_i64,
            "status": "ACTIVE", "activateAt": null,
        }));
    }
    for n in 0..bulk {
        lines.push(json!({
            "type": "association", "clusterName": "bulk", "associationId": format!("a-{n:017}"),
            "namespace": "bulk", "serviceAccount": format!("sa-{n}"), "roleArn": role("bulk"),
            "tags": {"n": n.to_string()}, "createdAt": 1_700_000_000_000_i64,
            "modifiedAt": 1_700_000_000_000_i64, "disableSessionTags": false,
            "targetRoleArn": null, "externalId": null, "policy": null,
        }));
    }
    lines.push(json!({"type": "end", "clusters": names.len(), "associations": bulk}));
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Writers create, update, tag and delete associations, and one creates and
/// deletes whole clusters, while exports are taken of a store large enough
/// that copying it takes a while. Each export must be the store between two
/// writes: it imports (every line whole, every association after its
/// cluster, one per service account, the counts right) and the imported
/// store checks clean.
#[test]
fn an_export_taken_while_writes_go_on_imports_and_checks_clean() {
    const WRITERS: usize = 3;
    const BULK: usize = 4_000;
    const MAX_OPS_PER_WRITER: usize = 3_000;
    const EXPORTS: usize = 4;
    const WRITES_BETWEEN_EXPORTS: usize = 40;

    let mut app = TestApp::unstarted();
    let file = write_file(
        app.data_dir.parent().unwrap(),
        "bulk.ndjson",
        &bulk_export(WRITERS, BULK),
    );
    assert_success(&import(&app.data_dir, &file));
    app.start();

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    // Writers 0.. churn associations; the last one churns whole clusters.
    let writers: Vec<_> = (0..=WRITERS)
        .map(|w| {
            let client = app.client();
            let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
            std::thread::spawn(move || {
                if w == WRITERS {
                    cluster_churn(&client, MAX_OPS_PER_WRITER / 5, &stop, &acked)
                } else {
                    association_churn(&client, w, MAX_OPS_PER_WRITER, &stop, &acked)
                }
            })
        })
        .collect();

    let mut exports = Vec::new();
    let deadline = Instant::now() + START_TIMEOUT;
    for _ in 0..EXPORTS {
        // Exports only while writes are landing.
        let target = acked.load(Ordering::SeqCst) + WRITES_BETWEEN_EXPORTS;
        while acked.load(Ordering::SeqCst) < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        exports.push(app.export());
    }
    stop.store(true, Ordering::SeqCst);
    let done: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(
        done > EXPORTS * WRITES_BETWEEN_EXPORTS,
        "only {done} writes"
    );

    for (n, export) in exports.iter().enumerate() {
        let copy = TestApp::unstarted();
        let file = write_file(copy.data_dir.parent().unwrap(), "export.ndjson", export);
        let imported = import(&copy.data_dir, &file);
        assert!(
            imported.status.success(),
            "export {n} does not import: {}",
            imported.stderr
        );
        let checked = check(&copy.data_dir);
        assert!(
            checked.status.success() && checked.stdout.contains("no problems found"),
            "export {n}: {}\n{}",
            checked.stdout,
            checked.stderr
        );
    }
}

/// Counts a write answered 200.
fn ack(answer: &crate::helpers::Answer, acked: &AtomicUsize) -> usize {
    if answer.status == 200 {
        acked.fetch_add(1, Ordering::SeqCst);
        1
    } else {
        0
    }
}

/// One writer's bounded load on its cluster: creates (service accounts
/// reused as soon as they are free), updates, deletes and tags. Returns how
/// many writes were answered 200.
fn association_churn(
    client: &Client,
    w: usize,
    max_ops: usize,
    stop: &AtomicBool,
    acked: &AtomicUsize,
) -> usize {
    let cluster = format!("w{w}");
    let mut ids: Vec<String> = Vec::new();
    let mut ok = 0;
    for i in 0..max_ops {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match i % 5 {
            0 | 1 => {
                let answer = client.create_association(
                    &cluster,
                    &json!({
                        "namespace": "default",
                        "serviceAccount": format!("sa-{}", i % 4),
                        "roleArn": role("load"),
                        "tags": {"i": i.to_string()},
                    }),
                );
                if answer.status == 200 {
                    ids.push(s(&answer.body["association"], "associationId").to_owned());
                }
                ok += ack(&answer, acked);
            }
            2 if !ids.is_empty() => {
                let id = &ids[i % ids.len()];
                let change = json!({"roleArn": role(&format!("load-{i}"))});
                ok += ack(&client.update_association(&cluster, id, &change), acked);
            }
            3 if !ids.is_empty() => {
                let id = ids.swap_remove(i % ids.len());
                ok += ack(&client.delete_association(&cluster, &id), acked);
            }
            _ => {
                let tags = json!({"i": i.to_string()});
                ok += ack(&client.tag_resource(&cluster_arn(&cluster), &tags), acked);
            }
        }
    }
    ok
}

/// Creates a cluster with associations and deletes it, again and again.
/// The `tmp-` names sort between `bulk` and `w0`, so their keys lie after
/// the bulk of the store.
fn cluster_churn(client: &Client, max_ops: usize, stop: &AtomicBool, acked: &AtomicUsize) -> usize {
    let mut ok = 0;
    for i in 0..max_ops {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let name = format!("tmp-{i}");
        ok += ack(&client.create_cluster(&name), acked);
        for sa in ["a", "b"] {
            let body = json!({"namespace": "ns", "serviceAccount": sa, "roleArn": role("tmp")});
            ok += ack(&client.create_association(&name, &body), acked);
        }
        ok += ack(&client.delete_cluster(&name), acked);
    }
    ok
}

/// `import` names what it reads in its usage, so that a user who forgets
/// the file learns how to call it.
#[test]
fn import_without_a_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<OsString> = vec!["import".into(), "--data-dir".into(), dir.path().into()];
    let exit = run_to_exit(command(&args, &[]));
    assert!(!exit.status.success());
    assert!(exit.stderr.contains("<FILE>"), "{}", exit.stderr);
}

#[test]
fn a_store_grown_through_the_api_takes_at_most_two_and_a_half_times_its_record_bytes_on_disk() {
    const CLUSTERS: usize = 4;
    const CLIENTS: usize = 8;
    const CREATES_PER_CLIENT: usize = 1_000;
    let mut app = TestApp::spawn();
    for c in 0..CLUSTERS {
        app.given_cluster(&format!("grown-{c}"));
    }
    // Creates with a token each, as the SDKs send them, in random places of
    // the associations' keys: sled appends every write to its log, and
    // without its segment cleaning (store.segment_cleaning_interval_ms = 0)
    // the same creates leave 4-6x their record bytes.
    let workers: Vec<_> = (0..CLIENTS)
        .map(|client_no| {
            let client = app.client();
            std::thread::spawn(move || {
                for i in 0..CREATES_PER_CLIENT {
                    let cluster = format!("grown-{}", (client_no + i) % CLUSTERS);
                    client
                        .create_association(
                            &cluster,
                            &json!({
                                "namespace": format!("ns-{client_no}"),
                                "serviceAccount": format!("sa-{i}"),
                                "roleArn": role("r"),
                                "clientRequestToken": format!("token-{client_no}-{i}"),
                            }),
                        )
                        .association();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("every create answered 200");
    }
    app.stop();
    let checked = check(&app.data_dir);
    assert_success(&checked);
    let count = CLIENTS * CREATES_PER_CLIENT;
    assert!(
        checked.stdout.contains(&format!("associations: {count}")),
        "{}",
        checked.stdout
    );
    assert_data_dir_at_most(&app.data_dir, &checked, 2.5, &format!("{count} creates"));
}
