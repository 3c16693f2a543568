//! Many clients at once: every acknowledged update applied, no error, and
//! modifiedAt never going backwards.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier};

use serde_json::json;

use crate::helpers::{role, s, ts, TestApp};

#[test]
fn thirty_two_clients_updating_one_association_fifty_times_each_all_succeed_in_order() {
    const CLIENTS: usize = 32;
    const UPDATES: usize = 50;
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let created = app.given_association("c1", "default", "app", &role("initial"));
    let id = s(&created, "associationId").to_owned();
    let start = Arc::new(Barrier::new(CLIENTS));

    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = app.client();
            let id = id.clone();
            let start = start.clone();
            let created_at = created["createdAt"].clone();
            std::thread::spawn(move || {
                start.wait();
                let mut acked = Vec::with_capacity(UPDATES);
                for u in 0..UPDATES {
                    let role_arn = role(&format!("client-{c}-update-{u}"));
                    let answer =
                        client.update_association("c1", &id, &json!({ "roleArn": role_arn }));
                    let association = answer.association();
                    assert_eq!(association["roleArn"], role_arn.as_str());
                    assert_eq!(association["createdAt"], created_at);
                    acked.push((role_arn, ts(&association, "modifiedAt")));
                }
                acked
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        let acked = worker.join().expect("every update answered 200");
        for pair in acked.windows(2) {
            assert!(
                pair[1].1 > pair[0].1,
                "one client saw modifiedAt go from {} to {}",
                pair[0].1,
                pair[1].1
            );
        }
        all.extend(acked);
    }
    assert_eq!(all.len(), CLIENTS * UPDATES);
    // Every change got its own modifiedAt: none was applied on top of a
    // stale read of another.
    let stamps: HashSet<u64> = all.iter().map(|(_, m)| m.to_bits()).collect();
    assert_eq!(stamps.len(), all.len(), "two updates share a modifiedAt");

    let (last_role, last_modified) = all
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .unwrap();
    let sent: HashSet<&str> = all.iter().map(|(r, _)| r.as_str()).collect();
    for round in ["now", "after a restart"] {
        let stored = app.describe_association("c1", &id).association();
        assert!(sent.contains(s(&stored, "roleArn")), "{round}: {stored}");
        assert_eq!(ts(&stored, "modifiedAt"), last_modified, "{round}");
        assert_eq!(stored["roleArn"], last_role.as_str(), "{round}");
        assert_eq!(stored["createdAt"], created["createdAt"], "{round}");
        app.restart();
    }
}

#[test]
fn concurrent_creates_for_one_service_account_make_exactly_one_association() {
    const CLIENTS: usize = 16;
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let start = Arc::new(Barrier::new(CLIENTS));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = app.client();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                client.create_association(
                    "c1",
                    &json!({
                        "namespace": "default",
                        "serviceAccount": "app",
                        "roleArn": role(&format!("r{c}")),
                    }),
                )
            })
        })
        .collect();
    let answers: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let winners: Vec<_> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one create wins");
    let winner = winners[0].association();
    let id = s(&winner, "associationId");
    for answer in answers.iter().filter(|a| a.status != 200) {
        let message = answer.error(409, "ResourceInUseException");
        assert!(message.contains(id), "{message}");
    }
    assert_eq!(app.describe_association("c1", id).association(), winner);
}

#[test]
fn concurrent_retries_of_one_tokened_create_all_get_the_same_association() {
    const CLIENTS: usize = 16;
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let start = Arc::new(Barrier::new(CLIENTS));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let client = app.client();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                client
                    .create_association(
                        "c1",
                        &json!({
                            "namespace": "default",
                            "serviceAccount": "app",
                            "roleArn": role("r"),
                            "clientRequestToken": "one-token",
                        }),
                    )
                    .association()
            })
        })
        .collect();
    let answers: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let distinct: HashMap<String, usize> = answers.iter().fold(HashMap::new(), |mut counts, a| {
        *counts.entry(a.to_string()).or_default() += 1;
        counts
    });
    assert_eq!(distinct.len(), 1, "different answers: {distinct:?}");
    let id = s(&answers[0], "associationId");
    assert_eq!(app.describe_association("c1", id).association(), answers[0]);
}

#[test]
fn concurrent_retries_of_one_tokened_update_all_get_the_same_answer() {
    const CLIENTS: usize = 16;
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let created = app.given_association("c1", "default", "app", &role("r0"));
    let id = s(&created, "associationId").to_owned();
    let start = Arc::new(Barrier::new(CLIENTS));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let client = app.client();
            let start = start.clone();
            let id = id.clone();
            std::thread::spawn(move || {
                start.wait();
                client
                    .update_association(
                        "c1",
                        &id,
                        &json!({ "roleArn": role("r1"), "clientRequestToken": "one-token" }),
                    )
                    .association()
            })
        })
        .collect();
    let answers: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    for answer in &answers {
        assert_eq!(answer, &answers[0]);
    }
    assert_eq!(
        app.describe_association("c1", &id).association(),
        answers[0]
    );
}

/// Keys of `tree` under `cluster` (they all start with the name and a 0x00).
fn keys_under(db: &sled::Db, tree: &str, cluster: &str) -> usize {
    let prefix = [cluster.as_bytes(), &[0u8]].concat();
    db.open_tree(tree).unwrap().scan_prefix(prefix).count()
}

#[test]
fn delete_cluster_racing_creates_leaves_none_of_the_clusters_records_behind() {
    use pod_identity_store::store::keys;
    const CLIENTS: usize = 4;
    const MAX_PER_CLIENT: usize = 300;
    let mut app = TestApp::spawn();
    app.given_cluster("racy");
    app.given_cluster("other");
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = app.client();
            let acked = acked.clone();
            std::thread::spawn(move || {
                for i in 0..MAX_PER_CLIENT {
                    let answer = client.create_association(
                        "racy",
                        &json!({
                            "namespace": "default",
                            "serviceAccount": format!("sa-{c}-{i}"),
                            "roleArn": role("r"),
                            "clientRequestToken": format!("token-{c}-{i}"),
                        }),
                    );
                    // While the deletion runs the cluster is DELETING and refuses
                    // writes; once it is gone, it is not found.
                    if answer.status == 400 {
                        let message = answer.error(400, "InvalidRequestException");
                        assert!(message.contains("DELETING"), "{message}");
                        return true;
                    }
                    if answer.status == 404 {
                        answer.error(404, "ResourceNotFoundException");
                        return true;
                    }
                    let a = answer.association();
                    acked
                        .lock()
                        .unwrap()
                        .push(s(&a, "associationId").to_owned());
                }
                false
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while acked.lock().unwrap().len() < 40 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(app.delete_cluster("racy").cluster()["status"], "DELETING");
    let stopped_by_delete: Vec<bool> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(
        stopped_by_delete.iter().all(|&s| s),
        "the delete must come while the creates run"
    );
    for id in acked.lock().unwrap().iter() {
        app.describe_association("racy", id)
            .error(404, "ResourceNotFoundException");
    }
    // A write elsewhere makes everything before it durable; then read the store.
    app.given_association("other", "default", "app", &role("r"));
    app.kill();
    {
        let db = crate::helpers::open_store_directly(&app.data_dir).unwrap();
        for tree in [
            keys::TREE_ASSOCIATIONS,
            keys::TREE_ASSOCIATION_INDEX,
            keys::TREE_TOKENS,
        ] {
            assert_eq!(
                keys_under(&db, tree, "racy"),
                0,
                "{tree} keeps keys of racy"
            );
        }
        assert!(!db
            .open_tree(keys::TREE_CLUSTERS)
            .unwrap()
            .contains_key("racy")
            .unwrap());
        assert_eq!(keys_under(&db, keys::TREE_ASSOCIATIONS, "other"), 1);
    }
    app.start();
    app.given_cluster("racy");
    app.given_association("racy", "default", "sa-0-0", &role("r"));
}
