//! What a write that was answered 200 must survive: a SIGKILL of the server.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{role, s, ts, TestApp};

#[test]
fn a_new_users_cluster_association_and_role_change_survive_sigkill_and_restart() {
    let mut app = TestApp::spawn();

    let cluster = app.create_cluster("demo").cluster();
    assert_eq!(cluster["status"], "CREATING");
    assert_eq!(app.describe_cluster("demo").cluster()["status"], "ACTIVE");

    let created = app
        .create_association(
            "demo",
            &json!({
                "namespace": "default",
                "serviceAccount": "app",
                "roleArn": role("first-role"),
            }),
        )
        .association();
    let id = s(&created, "associationId").to_owned();
    assert_eq!(ts(&created, "createdAt"), ts(&created, "modifiedAt"));

    let updated = app
        .update_association(
            "demo",
            &id,
            &json!({
                "roleArn": role("second-role"),
                "clientRequestToken": "8d3e0f5c-6f5e-4c7e-9a0e-4b1d2c3e4f50",
            }),
        )
        .association();
    assert_eq!(updated["roleArn"], role("second-role"));
    assert_eq!(updated["createdAt"], created["createdAt"]);
    assert!(ts(&updated, "modifiedAt") > ts(&created, "modifiedAt"));

    app.restart();

    let described = app.describe_association("demo", &id).association();
    assert_eq!(described["roleArn"], role("second-role"));
    assert_eq!(described["createdAt"], created["createdAt"]);
    assert_eq!(described["modifiedAt"], updated["modifiedAt"]);
    assert_eq!(
        described, updated,
        "describe after restart = update's answer"
    );
    let cluster = app.describe_cluster("demo").cluster();
    assert_eq!(cluster["status"], "ACTIVE");
}

#[test]
fn every_update_acknowledged_before_a_sigkill_in_a_burst_survives_the_restart() {
    const THREADS: usize = 6;
    const MAX_PER_THREAD: usize = 400;
    const ACKS_BEFORE_KILL: usize = 120;

    let mut app = TestApp::spawn();
    app.given_cluster("burst");
    let created = app.given_association("burst", "default", "app", &role("initial"));
    let id = s(&created, "associationId").to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    // Every role some request carried (recorded before it is sent).
    let sent = Arc::new(Mutex::new(HashSet::from([role("initial")])));
    // (role, modifiedAt) of every update answered 200.
    let acked = Arc::new(Mutex::new(Vec::<(String, f64)>::new()));
    let unexpected = Arc::new(Mutex::new(Vec::<String>::new()));

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let client = app.client();
            let (id, stop, sent, acked, unexpected) = (
                id.clone(),
                stop.clone(),
                sent.clone(),
                acked.clone(),
                unexpected.clone(),
            );
            std::thread::spawn(move || {
                // Returns whether the thread ended on a failed request (the kill).
                for i in 0..MAX_PER_THREAD {
                    if stop.load(Ordering::SeqCst) {
                        return false;
                    }
                    let role_arn = role(&format!("burst-{t}-{i}"));
                    sent.lock().unwrap().insert(role_arn.clone());
                    match client.try_update_association(
                        "burst",
                        &id,
                        &json!({ "roleArn": role_arn }),
                    ) {
                        Ok(answer) if answer.status == 200 => {
                            let association = answer.association();
                            assert_eq!(association["roleArn"], role_arn.as_str());
                            acked
                                .lock()
                                .unwrap()
                                .push((role_arn, ts(&association, "modifiedAt")));
                        }
                        Ok(answer) => {
                            unexpected.lock().unwrap().push(answer.text);
                            return false;
                        }
                        Err(_) => return true,
                    }
                }
                false
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < ACKS_BEFORE_KILL && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    app.kill();
    stop.store(true, Ordering::SeqCst);
    let cut_off: Vec<bool> = workers.into_iter().map(|w| w.join().unwrap()).collect();

    assert_eq!(unexpected.lock().unwrap().as_slice(), &[] as &[String]);
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= ACKS_BEFORE_KILL,
        "only {} updates were acknowledged within 30 s",
        acked.len()
    );
    assert!(
        cut_off.iter().any(|&c| c),
        "the kill came after every thread had finished; it must come while updates run"
    );
    let mut stamps: Vec<f64> = acked.iter().map(|(_, m)| *m).collect();
    stamps.sort_by(f64::total_cmp);
    stamps.dedup();
    assert_eq!(
        stamps.len(),
        acked.len(),
        "two acknowledged changes share a modifiedAt"
    );
    let (last_role, last_modified) = acked
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .expect("at least one acknowledged update");

    app.start();

    let after = app.describe_association("burst", &id).association();
    let modified = ts(&after, "modifiedAt");
    assert!(
        modified >= last_modified,
        "an acknowledged update was lost: modifiedAt {modified} < acknowledged {last_modified}"
    );
    let final_role = s(&after, "roleArn").to_owned();
    assert!(
        sent.lock().unwrap().contains(&final_role),
        "the stored role {final_role} is one no request sent"
    );
    if modified == last_modified {
        assert_eq!(final_role, last_role, "same modifiedAt, different role");
    }
    assert_eq!(after["createdAt"], created["createdAt"]);

    // The restarted server keeps working, and what it acknowledges stays.
    let next = app
        .update_association("burst", &id, &json!({ "roleArn": role("after-restart") }))
        .association();
    assert!(ts(&next, "modifiedAt") > modified);
    app.restart();
    assert_eq!(app.describe_association("burst", &id).association(), next);
}
