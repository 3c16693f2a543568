//! HTTPS (`server.tls`): a throwaway CA made here with rcgen, the server's
//! certificate signed by it, and curl trusting only that CA (`--cacert`),
//! signing with `--aws-sigv4` as a client of a server with auth on would.

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::auth::{refused_start, AuthApp, Key, PLAIN};

/// PEM files of a CA and of a server certificate for 127.0.0.1 and
/// localhost that it signed.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// A key of no certificate here.
    other_key: PathBuf,
}

fn make_pki(dir: &Path, ca_name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "pod-identity-store");
    let server_cert = params.signed_by(&server_key, &issuer).unwrap();

    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        other_key: dir.join("other-key.pem"),
    };
    std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
    std::fs::write(&pki.cert, server_cert.pem()).unwrap();
    std::fs::write(&pki.key, server_key.serialize_pem()).unwrap();
    std::fs::write(&pki.other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    pki
}

fn tls_toml(cert: &Path, key: &Path) -> String {
    format!(
        "[server.tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    )
}

/// curl over HTTPS trusting only `ca`; signed with `key` when given.
/// (status, body), or the curl error.
fn curl(ca: &Path, url: &str, key: Option<Key>) -> Result<(u16, String), String> {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", "30"])
        .args(["--write-out", "\n%{http_code}"])
        .arg("--cacert")
        .arg(ca);
    if let Some(key) = key {
        cmd.args(["--aws-sigv4", "aws:amz:us-east-1:eks"])
            .args(["--user", &format!("{}:{}", key.id, key.secret)]);
    }
    let out = cmd.arg(url).output().expect("curl runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    Ok((status.parse().unwrap(), body.to_owned()))
}

#[test]
fn with_a_certificate_the_server_speaks_https_only_and_checks_signatures_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path(), "test CA");
    let t = AuthApp::spawn(&tls_toml(&pki.cert, &pki.key));
    let port = t.app.base.rsplit(':').next().unwrap().to_owned();
    let https = format!("https://127.0.0.1:{port}");

    assert_eq!(
        curl(&pki.ca, &format!("{https}/healthz"), None),
        Ok((200, "ok\n".to_owned()))
    );
    let (status, body) = curl(&pki.ca, &format!("{https}/clusters"), Some(PLAIN)).unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"clusters":[]}"#));
    let (status, body) = curl(&pki.ca, &format!("{https}/clusters"), None).unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Missing Authentication Token"), "{body}");
    let (status, _) = curl(&pki.ca, &format!("https://localhost:{port}/healthz"), None).unwrap();
    assert_eq!(status, 200);

    // A client that trusts another CA refuses the server.
    let other = tempfile::tempdir().unwrap();
    let other_pki = make_pki(other.path(), "another CA");
    let err = curl(&other_pki.ca, &format!("{https}/healthz"), None).unwrap_err();
    assert!(err.contains("certificate"), "{err}");
    // Plain HTTP gets no HTTP answer.
    let plain = ureq::get(&format!("http://127.0.0.1:{port}/healthz")).call();
    assert!(matches!(plain, Err(ureq::Error::Transport(_))), "{plain:?}");
}

#[test]
fn a_bad_or_mismatched_certificate_and_key_are_refused_at_start_up_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path(), "test CA");

    let line = refused_start(
        dir.path(),
        &tls_toml(&pki.cert, &pki.other_key),
        "127.0.0.1:0",
    );
    assert!(line.contains("do not make a usable pair"), "{line}");
    assert!(
        line.contains(&pki.other_key.display().to_string()),
        "{line}"
    );

    let line = refused_start(dir.path(), &tls_toml(&pki.key, &pki.key), "127.0.0.1:0");
    assert!(line.contains("server.tls.cert_file"), "{line}");

    let line = refused_start(dir.path(), &tls_toml(&pki.cert, &pki.cert), "127.0.0.1:0");
    assert!(line.contains("server.tls.key_file"), "{line}");

    let missing = dir.path().join("missing.pem");
    let line = refused_start(dir.path(), &tls_toml(&missing, &pki.key), "127.0.0.1:0");
    assert!(line.contains(&missing.display().to_string()), "{line}");

    let line = refused_start(
        dir.path(),
        &format!(
            "[server.tls]\ncert_file = {:?}\n",
            pki.cert.display().to_string()
        ),
        "127.0.0.1:0",
    );
    assert!(line.contains("server.tls.key_file"), "{line}");
}
