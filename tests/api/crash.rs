//! Crash durability under load: SIGKILL at random moments while several
//! clients create, update and delete, then check what survived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::helpers::{role, s, ts, Client, TestApp};

const CLUSTER: &str = "crashy";
const CLIENTS: usize = 6;
const ACCOUNTS_PER_CLIENT: usize = 8;
const ROUNDS: usize = 3;

/// A small pseudo-random sequence (no crate): xorshift seeded from the clock.
struct Rng(u64);

impl Rng {
    fn seeded(salt: u64) -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng((nanos ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What one service account's association is, as far as the client knows.
#[derive(Debug, Clone, PartialEq)]
enum Known {
    Absent,
    /// Present with this answer (id, role, modifiedAt...).
    Present(Value),
}

/// One request and, if it was answered, its answer.
#[derive(Debug, Clone)]
struct Sent {
    method: &'static str,
    path: String,
    body: Option<Value>,
    answer: Option<Value>,
}

/// A service account's history in one round: its state before the request
/// in flight (if any) and the last request.
#[derive(Debug, Clone)]
struct Account {
    known: Known,
    /// The request that was sent last; `answer` is None if the kill cut it off.
    last: Option<Sent>,
}

fn send(client: &Client, sent: &Sent) -> Option<(u16, Value)> {
    let bytes = sent.body.as_ref().map(|b| serde_json::to_vec(b).unwrap());
    let content_type = bytes.as_ref().map(|_| "application/json");
    match client.try_request(sent.method, &sent.path, content_type, bytes.as_deref()) {
        Ok(answer) => Some((answer.status, answer.body.clone())),
        Err(_) => None, // no answer: the server was killed
    }
}

/// Runs one client's load until `stop` or the server dies.
fn load(
    client: Client,
    accounts: Arc<Mutex<HashMap<String, Account>>>,
    names: Vec<String>,
    seed: u64,
    deadline: Instant,
) {
    let mut rng = Rng::seeded(seed);
    let mut n = 0;
    while Instant::now() < deadline {
        n += 1;
        let name = &names[rng.below(names.len() as u64) as usize];
        let known = accounts.lock().unwrap()[name].known.clone();
        let token = format!("{name}-{seed}-{n}");
        let sent = match &known {
            Known::Absent => Sent {
                method: "POST",
                path: format!("/clusters/{CLUSTER}/pod-identity-associations"),
                body: Some(
                    json!({"namespace": "load", "serviceAccount": name, "roleArn": role(&format!("r-{n}")), "clientRequestToken": token}),
                ),
                answer: None,
            },
            Known::Present(a) if rng.below(4) == 0 => Sent {
                method: "DELETE",
                path: format!(
                    "/clusters/{CLUSTER}/pod-identity-associations/{}",
                    s(a, "associationId")
                ),
                body: None,
                answer: None,
            },
            Known::Present(a) => Sent {
                method: "POST",
                path: format!(
                    "/clusters/{CLUSTER}/pod-identity-associations/{}",
                    s(a, "associationId")
                ),
                body: Some(
                    json!({"roleArn": role(&format!("r-{n}")), "clientRequestToken": token}),
                ),
                answer: None,
            },
        };
        accounts.lock().unwrap().get_mut(name).unwrap().last = Some(sent.clone());
        let Some((status, body)) = send(&client, &sent) else {
            return;
        };
        assert_eq!(status, 200, "{} {}: {body}", sent.method, sent.path);
        let mut accounts = accounts.lock().unwrap();
        let account = accounts.get_mut(name).unwrap();
        account.last.as_mut().unwrap().answer = Some(body.clone());
        account.known = match sent.method {
            "DELETE" => Known::Absent,
            _ => Known::Present(body["association"].clone()),
        };
    }
}

/// The association of a service account as the server has it now.
fn actual(client: &Client, name: &str) -> Known {
    let listed = client
        .list_associations(CLUSTER, &format!("?namespace=load&serviceAccount={name}"))
        .ok()
        .clone();
    match listed["associations"].as_array().unwrap().as_slice() {
        [] => Known::Absent,
        [one] => Known::Present(
            client
                .describe_association(CLUSTER, s(one, "associationId"))
                .association(),
        ),
        more => panic!("{} associations for one service account", more.len()),
    }
}

/// Checks one account after the restart and returns what it now is.
fn verify(client: &Client, name: &str, account: &Account) -> Known {
    let now = actual(client, name);
    let Some(last) = &account.last else {
        assert_eq!(now, account.known, "{name}: untouched but changed");
        return now;
    };
    match &last.answer {
        // Acknowledged: it must be exactly as answered, and a retry of the
        // same request must get the same answer again.
        Some(answer) => {
            assert_eq!(
                now, account.known,
                "{name}: an acknowledged {} {} was lost",
                last.method, last.path
            );
            if last.method == "POST" {
                let (status, again) = send(client, last).expect("an answer");
                assert_eq!(status, 200, "{name}: the retry failed: {again}");
                assert_eq!(&again, answer, "{name}: the retry got another answer");
            }
        }
        // In flight when killed: either it happened entirely or not at all.
        None => {
            // `known` is still the state before the request in flight.
            let before = account.known.clone();
            let happened = match (last.method, &now) {
                ("DELETE", Known::Absent) => true,
                (_, Known::Present(a)) => last
                    .body
                    .as_ref()
                    .is_some_and(|b| b["roleArn"] == a["roleArn"]),
                _ => false,
            };
            assert!(
                happened || now == before,
                "{name}: half of {} {} is there: {now:?} (before {before:?})",
                last.method,
                last.path
            );
        }
    }
    // The index agrees: the slot is taken exactly when an association is there.
    let probe = client.create_association(
        CLUSTER,
        &json!({"namespace": "load", "serviceAccount": name, "roleArn": role("probe")}),
    );
    match &now {
        Known::Present(a) => {
            let message = probe.error(409, "ResourceInUseException");
            assert!(message.contains(s(a, "associationId")), "{message}");
            now.clone()
        }
        Known::Absent => Known::Present(probe.association()),
    }
}

#[test]
fn acknowledged_writes_survive_sigkill_at_random_moments_and_nothing_is_half_written() {
    let mut app = TestApp::spawn();
    app.given_cluster(CLUSTER);
    let names: Vec<String> = (0..CLIENTS * ACCOUNTS_PER_CLIENT)
        .map(|i| format!("sa-{i}"))
        .collect();
    let mut known: HashMap<String, Known> =
        names.iter().map(|n| (n.clone(), Known::Absent)).collect();
    let mut rng = Rng::seeded(42);
    let mut acknowledged = 0;
    for round in 0..ROUNDS {
        let accounts: HashMap<String, Account> = known
            .iter()
            .map(|(n, k)| {
                (
                    n.clone(),
                    Account {
                        known: k.clone(),
                        last: None,
                    },
                )
            })
            .collect();
        let accounts = Arc::new(Mutex::new(accounts));
        let deadline = Instant::now() + Duration::from_secs(10);
        let workers: Vec<_> = names
            .chunks(ACCOUNTS_PER_CLIENT)
            .enumerate()
            .map(|(i, mine)| {
                let (client, accounts, mine) = (app.client(), accounts.clone(), mine.to_vec());
                std::thread::spawn(move || {
                    load(
                        client,
                        accounts,
                        mine,
                        (round * CLIENTS + i) as u64,
                        deadline,
                    )
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + rng.below(600)));
        app.kill(); // SIGKILL, while the clients are sending
        for worker in workers {
            worker.join().unwrap();
        }
        app.start();
        let accounts = accounts.lock().unwrap().clone();
        acknowledged += accounts
            .values()
            .filter(|a| a.last.as_ref().is_some_and(|l| l.answer.is_some()))
            .count();
        for name in &names {
            let now = verify(&app.client(), name, &accounts[name]);
            known.insert(name.clone(), now);
        }
    }
    assert!(
        acknowledged > 0,
        "no write was acknowledged before the kills"
    );
}

/// A SIGKILL cannot show a missing fsync: the page cache survives it. So the
/// server's own trace of its group commit is read instead: every
/// acknowledgement must come after an fsync of the data file that covered it.
#[test]
fn no_write_is_acknowledged_before_an_fsync_of_the_data_file_covered_it() {
    let app =
        TestApp::spawn_with_env(&[("RUST_LOG", "pod_identity_store::durability=trace".into())]);
    app.given_cluster("c1");
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let client = app.client();
            std::thread::spawn(move || {
                let a = client
                    .create_association("c1", &json!({"namespace": "ns", "serviceAccount": format!("sa-{t}"), "roleArn": role("r0")}))
                    .association();
                for i in 0..25 {
                    client
                        .update_association("c1", s(&a, "associationId"), &json!({"roleArn": role(&format!("r{i}"))}))
                        .association();
                }
                ts(&a, "createdAt")
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let log = std::fs::read_to_string(&app.log).unwrap();
    let mut fsynced_upto = 0u64;
    let (mut acks, mut fsyncs) = (0, 0);
    for line in log.lines() {
        if let Some(upto) = line
            .split("fsynced the data file; durable up to write ")
            .nth(1)
        {
            fsynced_upto = fsynced_upto.max(upto.trim().parse().unwrap());
            fsyncs += 1;
        } else if let Some(write) = line.split("acknowledging writes up to ").nth(1) {
            let write: u64 = write.trim().parse().unwrap();
            assert!(
                write <= fsynced_upto,
                "write {write} acknowledged when only {fsynced_upto} were fsynced"
            );
            acks += 1;
        }
    }
    // 1 cluster + 8 creates + 200 updates.
    assert!(acks >= 209, "only {acks} acknowledgements traced:\n{log}");
    assert!(
        fsyncs >= 1 && fsyncs <= acks,
        "{fsyncs} fsyncs for {acks} acknowledgements"
    );
}

/// sled writes a node too large for its log to a file of its own under
/// `blobs/`, which sled never fsyncs; the group commit must.
#[test]
fn large_records_in_sleds_blob_files_are_fsynced_before_they_are_acknowledged() {
    // Without compression (the default): compressed, these nodes would stay
    // too small for a blob file.
    let app =
        TestApp::spawn_with_env(&[("RUST_LOG", "pod_identity_store::durability=trace".into())]);
    app.given_cluster("big");
    let tags: serde_json::Map<String, Value> = (0..50)
        .map(|i| {
            (
                format!("k{i:02}{}", "x".repeat(125)),
                Value::String("v".repeat(256)),
            )
        })
        .collect();
    for i in 0..40 {
        app.create_association(
            "big",
            &json!({"namespace": "ns", "serviceAccount": format!("sa-{i}"), "roleArn": role("r"), "tags": tags}),
        )
        .association();
    }
    let blobs: Vec<String> = std::fs::read_dir(app.data_dir.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !blobs.is_empty(),
        "no record was large enough for a blob file: the test proves nothing"
    );
    let log = std::fs::read_to_string(&app.log).unwrap();
    for blob in &blobs {
        assert!(
            log.contains(&format!("fsynced blob file {blob}\n")),
            "blob file {blob} was never fsynced"
        );
    }
}
