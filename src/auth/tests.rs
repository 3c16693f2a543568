use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// get-vanilla of AWS's test suite, signed for `service` in us-east-1.
const VANILLA_SIGNATURE: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
const SIGNED_AT: &str = "20150830T123600Z";

fn verifier() -> Verifier {
    let credentials = Credentials::parse(&format!(
        "[example]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = {SECRET}\n"
    ))
    .unwrap();
    Verifier {
        region: "us-east-1".into(),
        file: PathBuf::from("credentials"),
        admins: HashSet::new(),
        keys: RwLock::new(KeySet::new(credentials)),
    }
}

fn at(amz_date: &str) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs(parse_amz_date(amz_date).unwrap() as u64)
}

/// get-vanilla with its Authorization header changed by `edit`, verified at `now`.
fn vanilla(
    edit: impl Fn(String) -> String,
    amz_date: Option<&str>,
    now: &str,
) -> Result<&'static str, AuthError> {
    let header = edit(format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature={VANILLA_SIGNATURE}"
    ));
    let header: &'static str = Box::leak(header.into_boxed_str());
    let amz_date: Option<&'static str> = amz_date.map(|d| &*Box::leak(d.into()));
    let request = sigv4::Request {
        method: "GET",
        path: "/",
        query: "",
        headers: move |name: &str| {
            let value: Option<&'static [u8]> = match name {
                "host" => Some(b"example.amazonaws.com"),
                "x-amz-date" => amz_date.map(str::as_bytes),
                _ => None,
            };
            value.into_iter()
        },
    };
    let signed = SignedRequest {
        authorization: header,
        amz_date,
        content_sha256: None,
    };
    verifier().verify(&request, &signed, "service", Some(b""), at(now))
}

fn same(header: String) -> String {
    header
}

#[test]
fn the_aws_test_suite_request_verifies_at_its_own_time_and_within_the_skew() {
    assert_eq!(vanilla(same, Some(SIGNED_AT), SIGNED_AT), Ok("AKIDEXAMPLE"));
    assert!(vanilla(same, Some(SIGNED_AT), "20150830T124100Z").is_ok());
    assert!(vanilla(same, Some(SIGNED_AT), "20150830T123100Z").is_ok());
}

#[test]
fn a_date_outside_the_skew_says_signature_expired_either_way() {
    let Err(AuthError::InvalidSignature(late)) = vanilla(same, Some(SIGNED_AT), "20150830T124101Z")
    else {
        panic!("accepted")
    };
    assert_eq!(
        late,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z \
         (20150830T124101Z - 5 min.)"
    );
    let Err(AuthError::InvalidSignature(early)) =
        vanilla(same, Some(SIGNED_AT), "20150830T123059Z")
    else {
        panic!("accepted")
    };
    assert!(
        early.starts_with("Signature expired: 20150830T123600Z is now later than 20150830T123559Z"),
        "{early}"
    );
}

#[test]
fn a_wrong_signature_is_refused_showing_the_canonical_request() {
    let Err(AuthError::InvalidSignature(message)) = vanilla(
        |h| h.replace(VANILLA_SIGNATURE, &"0".repeat(64)),
        Some(SIGNED_AT),
        SIGNED_AT,
    ) else {
        panic!("accepted")
    };
    assert!(message.starts_with(MISMATCH), "{message}");
    assert!(
        message.contains("'GET\n/\n\nhost:example.amazonaws.com\n"),
        "{message}"
    );
}

#[test]
fn scope_problems_are_named() {
    let cases: [(&str, &str, &str); 4] = [
        (
            "us-east-1/service/",
            "eu-west-1/service/",
            "Credential should be scoped to a valid region.",
        ),
        (
            "/service/",
            "/eks/",
            "Credential should be scoped to correct service: 'service'.",
        ),
        (
            "aws4_request",
            "aws5_request",
            "Credential should be scoped with a valid terminator",
        ),
        (
            "20150830/",
            "20150829/",
            "Date in Credential scope does not match",
        ),
    ];
    for (from, to, expected) in cases {
        let Err(AuthError::InvalidSignature(message)) =
            vanilla(|h| h.replace(from, to), Some(SIGNED_AT), SIGNED_AT)
        else {
            panic!("{to} accepted")
        };
        assert!(message.starts_with(expected), "{message}");
    }
}

#[test]
fn an_unknown_key_is_an_unrecognized_client() {
    let Err(AuthError::UnrecognizedClient(message)) = vanilla(
        |h| h.replace("AKIDEXAMPLE", "AKIDOTHER"),
        Some(SIGNED_AT),
        SIGNED_AT,
    ) else {
        panic!("accepted")
    };
    assert!(message.starts_with("The security token included in the request is invalid."));
    assert!(message.contains("AKIDOTHER"));
}

#[test]
fn a_missing_or_malformed_date_is_an_incomplete_signature() {
    let Err(AuthError::IncompleteSignature(message)) = vanilla(same, None, SIGNED_AT) else {
        panic!("accepted")
    };
    assert!(message.contains("'X-Amz-Date'"), "{message}");
    for bad in [
        "2015-08-30T12:36:00Z",
        "20150830T123600",
        "20151330T123600Z",
        "20150830T256000Z",
    ] {
        let Err(AuthError::IncompleteSignature(message)) = vanilla(same, Some(bad), SIGNED_AT)
        else {
            panic!("{bad} accepted")
        };
        assert!(message.contains(bad), "{message}");
    }
}

#[test]
fn a_signing_key_is_derived_once_per_key_day_region_and_service() {
    let verifier = verifier();
    let auth = Authorization::parse(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host, Signature=00",
    )
    .unwrap();
    let keys = Arc::clone(&read(&verifier.keys));
    let first = keys.signing_key(&auth, SECRET);
    assert_eq!(
        first,
        sigv4::signing_key(SECRET, "20150830", "us-east-1", "service")
    );
    // A second request finds it cached, even if handed another secret.
    assert_eq!(keys.signing_key(&auth, "not consulted"), first);
    assert_eq!(read(&keys.signing_keys).len(), 1);
    let next_day = Authorization::parse(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/service/aws4_request, \
         SignedHeaders=host, Signature=00",
    )
    .unwrap();
    assert_ne!(keys.signing_key(&next_day, SECRET), first);
    assert_eq!(read(&keys.signing_keys).len(), 2);
}

#[test]
fn amz_dates_round_trip() {
    for text in ["20150830T123600Z", "19700101T000000Z", "20261205T235959Z"] {
        assert_eq!(format_amz_date(parse_amz_date(text).unwrap()), text);
    }
    assert_eq!(parse_amz_date("19700101T000001Z"), Some(1));
}
