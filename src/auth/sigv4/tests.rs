use super::*;

/// AWS's SigV4 test suite: every case signs with this key, at this
/// time, for this scope.
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const AMZ_DATE: &str = "20150830T123600Z";
const SCOPE: &str = "20150830/us-east-1/service/aws4_request";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// One case of the suite: the request, and what it must give.
struct Case {
    method: &'static str,
    path: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    canonical: &'static str,
    string_to_sign_hash: Option<&'static str>,
    signature: &'static str,
}

fn check(case: &Case) {
    let request = Request {
        method: case.method,
        path: case.path,
        query: case.query,
        headers: |name: &str| {
            case.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes())
                .collect::<Vec<_>>()
                .into_iter()
        },
    };
    let header = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{SCOPE}, SignedHeaders={}, Signature={}",
        signed_headers(case),
        case.signature
    );
    let auth = Authorization::parse(&header).unwrap();
    assert_eq!(auth.scope, SCOPE);
    let canonical = canonical_request(&request, auth.signed_headers, &payload_sha256(case.body));
    assert_eq!(canonical, case.canonical, "{}", case.path);
    let to_sign = string_to_sign(AMZ_DATE, auth.scope, &canonical);
    if let Some(hash) = case.string_to_sign_hash {
        assert_eq!(to_sign, format!("{ALGORITHM}\n{AMZ_DATE}\n{SCOPE}\n{hash}"));
    }
    let key = signing_key(SECRET, "20150830", "us-east-1", "service");
    assert_eq!(signature(&key, &to_sign), case.signature);
    assert!(signature_matches(&key, &to_sign, auth.signature));
    assert!(signature_matches(
        &key,
        &to_sign,
        &auth.signature.to_ascii_uppercase()
    ));
    // One bit off anywhere, and it no longer matches.
    let mut flipped = auth.signature.as_bytes().to_vec();
    flipped[63] = if flipped[63] == b'0' { b'1' } else { b'0' };
    assert!(!signature_matches(
        &key,
        &to_sign,
        std::str::from_utf8(&flipped).unwrap()
    ));
    let other_key = signing_key("another secret", "20150830", "us-east-1", "service");
    assert!(!signature_matches(&other_key, &to_sign, auth.signature));
}

fn signed_headers(case: &Case) -> String {
    let mut names: Vec<String> = case
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names.join(";")
}

const HOST: (&str, &str) = ("Host", "example.amazonaws.com");
const DATE: (&str, &str) = ("X-Amz-Date", AMZ_DATE);

#[test]
fn get_vanilla_matches_the_aws_test_suite() {
    check(&Case {
        method: "GET",
        path: "/",
        query: "",
        headers: &[HOST, DATE],
        body: b"",
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
                    host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign_hash: Some(
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        ),
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    });
}

#[test]
fn post_vanilla_matches_the_aws_test_suite() {
    check(&Case {
        method: "POST",
        path: "/",
        query: "",
        headers: &[HOST, DATE],
        body: b"",
        canonical: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
                    host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign_hash: Some(
            "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
        ),
        signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    });
}

#[test]
fn get_vanilla_query_order_key_case_matches_the_aws_test_suite() {
    check(&Case {
        method: "GET",
        path: "/",
        query: "Param2=value2&Param1=value1",
        headers: &[HOST, DATE],
        body: b"",
        canonical: "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n\
                    x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
                    e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign_hash: Some(
            "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
        ),
        signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    });
}

#[test]
fn get_vanilla_query_order_encoded_matches_the_aws_test_suite() {
    check(&Case {
        method: "GET",
        path: "/",
        query: "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
        headers: &[HOST, DATE],
        body: b"",
        canonical: "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\n\
                    host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
                    host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign_hash: None,
        signature: "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
    });
}

#[test]
fn post_x_www_form_urlencoded_matches_the_aws_test_suite() {
    check(&Case {
        method: "POST",
        path: "/",
        query: "",
        headers: &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            HOST,
            ("Content-Length", "13"),
            DATE,
            (
                "x-amz-content-sha256",
                "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            ),
        ],
        body: b"Param1=value1",
        canonical: "POST\n/\n\ncontent-length:13\n\
                    content-type:application/x-www-form-urlencoded\n\
                    host:example.amazonaws.com\n\
                    x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n\
                    x-amz-date:20150830T123600Z\n\n\
                    content-length;content-type;host;x-amz-content-sha256;x-amz-date\n\
                    9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        string_to_sign_hash: Some(
            "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
        ),
        signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
    });
}

#[test]
fn header_values_are_trimmed_and_repeated_headers_joined_as_the_aws_test_suite_says() {
    check(&Case {
        method: "GET",
        path: "/",
        query: "",
        headers: &[
            HOST,
            ("My-Header1", " value1"),
            ("My-Header2", " \"a   b   c\""),
            DATE,
        ],
        body: b"",
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\n\
                    my-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\n\
                    host;my-header1;my-header2;x-amz-date\n\
                    e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign_hash: None,
        signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    });
    check(&Case {
        method: "GET",
        path: "/",
        query: "",
        headers: &[
            HOST,
            ("My-Header1", "value2"),
            ("My-Header1", "value2"),
            ("My-Header1", "value1"),
            DATE,
        ],
        body: b"",
        canonical: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n\
                    x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n\
                    e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign_hash: None,
        signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    });
}

#[test]
fn paths_are_normalized_as_the_aws_test_suite_says() {
    check(&Case {
        method: "GET",
        path: "//example//",
        query: "",
        headers: &[HOST, DATE],
        body: b"",
        canonical: "GET\n/example/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
                    host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign_hash: None,
        signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
    });
    check(&Case {
        method: "GET",
        path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        query: "",
        headers: &[HOST, DATE],
        body: b"",
        canonical: "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\n\
                    host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
                    host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign_hash: None,
        signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    });
}

#[test]
fn an_encoded_path_is_encoded_again_as_in_the_aws_double_encode_case() {
    // The suite's `double-encode-path` case (an API Gateway path with
    // `@` and an encoded `=`).
    let request = Request {
        method: "POST",
        path: "/test/@connections/JBDvjfGEIAMCERw%3D",
        query: "",
        headers: |name: &str| {
            let value: &[u8] = match name {
                "host" => b"tj9n5r0m12.execute-api.us-east-1.amazonaws.com",
                _ => b"20210511T154045Z",
            };
            std::iter::once(value)
        },
    };
    assert_eq!(
        canonical_request(&request, "host;x-amz-date", EMPTY_SHA256),
        "POST\n/test/%40connections/JBDvjfGEIAMCERw%253D\n\n\
         host:tj9n5r0m12.execute-api.us-east-1.amazonaws.com\nx-amz-date:20210511T154045Z\n\n\
         host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn an_arn_label_is_signed_double_encoded_as_botocore_and_the_rust_sdk_sign_it() {
    let mut uri = String::new();
    canonical_uri(
        "/tags/arn%3Aaws%3Aeks%3Aus-east-1%3A123456789012%3Acluster%2Fc1",
        &mut uri,
    );
    assert_eq!(
        uri,
        "/tags/arn%253Aaws%253Aeks%253Aus-east-1%253A123456789012%253Acluster%252Fc1"
    );
}

#[test]
fn query_parameters_without_a_value_get_an_empty_one_and_repeats_sort_by_value() {
    let mut query = String::new();
    canonical_query("tagKeys=b&tagKeys=a&flag&x=%7e%2F", &mut query);
    assert_eq!(query, "flag=&tagKeys=a&tagKeys=b&x=~%2F");
}

#[test]
fn a_header_missing_a_part_is_refused_naming_each_missing_part() {
    let err = Authorization::parse("AWS4-HMAC-SHA256 Signature=abc").unwrap_err();
    assert!(
        err.starts_with(
            "Authorization header requires 'Credential' parameter. \
             Authorization header requires 'SignedHeaders' parameter."
        ),
        "{err}"
    );
    let err = Authorization::parse(
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/eks, SignedHeaders=host, Signature=ab",
    )
    .unwrap_err();
    assert!(err.starts_with("Credential must have exactly 5"), "{err}");
    for credential in [
        "AKID/2015-08-30/us-east-1/eks/aws4_request",
        "AKID/20150830//eks/aws4_request",
        "/20150830/us-east-1/eks/aws4_request",
    ] {
        let err = Authorization::parse(&format!(
            "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=ab"
        ))
        .unwrap_err();
        assert!(
            err.starts_with("Credential must be keyid/YYYYMMDD/"),
            "{err}"
        );
    }
    let err = Authorization::parse("AWS4-HMAC-SHA256 Credential").unwrap_err();
    assert!(err.contains("missing equal-sign"), "{err}");
    let err = Authorization::parse("Basic dXNlcjpwYXNz").unwrap_err();
    assert!(err.contains("Signature Version 4"), "{err}");
    let err = Authorization::parse(
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/eks/aws4_request, \
         SignedHeaders=x-amz-date, Signature=ab",
    )
    .unwrap_err();
    assert!(err.contains("must include 'host'"), "{err}");
}

#[test]
fn a_whole_header_parses_into_its_scope() {
    let auth = Authorization::parse(
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/eu-west-1/eks/aws4_request,SignedHeaders=host;x-amz-date,Signature=ab",
    )
    .unwrap();
    assert_eq!(
        (auth.access_key_id, auth.date, auth.region, auth.service),
        ("AKID", "20150830", "eu-west-1", "eks")
    );
    assert_eq!(auth.scope, "20150830/eu-west-1/eks/aws4_request");
    assert_eq!(auth.signed_headers, "host;x-amz-date");
}
