//! AWS Signature Version 4 in its header form, as a server checks it: the
//! `Authorization` header parsed, the canonical request and the string to
//! sign rebuilt from what arrived, the signing key derived, the signature
//! compared in constant time. The primitives are RustCrypto's `hmac` and
//! `sha2`; nothing here is hand-made cryptography.
//!
//! The canonical URI is the path as received, encoded once more as every
//! AWS service but S3 expects: clients sign the already percent-encoded
//! path, so a `%3A` in `/tags/arn%3Aaws%3Aeks…` is signed as `%253A`. The
//! known-answer tests below come from AWS's published SigV4 test suite.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The one algorithm of the header form this server accepts.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
pub const TERMINATOR: &str = "aws4_request";

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key_id: &'a str,
    /// `YYYYMMDD`, as the scope gives it (not yet checked).
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub terminator: &'a str,
    /// `date/region/service/terminator`, as signed.
    pub scope: &'a str,
    /// `access key ID/scope`, the whole `Credential` value.
    pub credential: &'a str,
    /// Lowercase names joined by `;`, exactly as the client listed them.
    pub signed_headers: &'a str,
    pub signature: &'a str,
}

impl<'a> Authorization<'a> {
    /// Parses the header; `Err` is the message of an
    /// `IncompleteSignatureException` naming what is missing or malformed.
    pub fn parse(header: &'a str) -> Result<Authorization<'a>, String> {
        let with_header = |problem: String| format!("{problem} Authorization={header}");
        let (algorithm, rest) = header
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((header.trim(), ""));
        if algorithm != ALGORITHM {
            return Err(with_header(format!(
                "Unsupported Authorization algorithm '{algorithm}': sign requests with Signature \
                 Version 4 ({ALGORITHM})."
            )));
        }
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(with_header(format!(
                    "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header."
                )));
            };
            match key.trim() {
                "Credential" => credential = Some(value.trim()),
                "SignedHeaders" => signed_headers = Some(value.trim()),
                "Signature" => signature = Some(value.trim()),
                _ => {}
            }
        }
        let missing: Vec<String> = [
            ("Credential", credential),
            ("Signature", signature),
            ("SignedHeaders", signed_headers),
        ]
        .iter()
        .filter(|(_, value)| value.is_none_or(str::is_empty))
        .map(|(name, _)| format!("Authorization header requires '{name}' parameter."))
        .collect();
        if !missing.is_empty() {
            return Err(with_header(missing.join(" ")));
        }
        let (credential, signed_headers, signature) = (
            credential.unwrap_or_default(),
            signed_headers.unwrap_or_default(),
            signature.unwrap_or_default(),
        );
        let elements: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, terminator] = elements[..] else {
            return Err(with_header(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. \
                 keyid/date/region/service/term, got '{credential}'."
            )));
        };
        let date_ok = date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit());
        if !date_ok || [access_key_id, region, service, terminator].contains(&"") {
            return Err(with_header(format!(
                "Credential must be keyid/YYYYMMDD/region/service/aws4_request, with no element \
                 empty, got '{credential}'."
            )));
        }
        if !signed_headers.split(';').any(|h| h == "host") {
            return Err(with_header(format!(
                "SignedHeaders must include 'host', got '{signed_headers}'."
            )));
        }
        Ok(Authorization {
            access_key_id,
            date,
            region,
            service,
            terminator,
            scope: &credential[access_key_id.len() + 1..],
            credential,
            signed_headers,
            signature,
        })
    }
}

/// The request as the server received it, as far as signing goes.
pub struct Request<'a, H> {
    pub method: &'a str,
    /// The raw path, still percent-encoded as it came on the wire.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Every value of a header, by lowercase name, in the order received.
    pub headers: H,
}

/// The canonical request: method, canonical URI, canonical query, the
/// signed headers with their values, their names, the payload hash.
pub fn canonical_request<'v, H, I>(
    request: &Request<'_, H>,
    signed_headers: &str,
    payload_sha256: &str,
) -> String
where
    H: Fn(&str) -> I,
    I: Iterator<Item = &'v [u8]>,
{
    let mut out = String::with_capacity(256);
    out.push_str(request.method);
    out.push('\n');
    canonical_uri(request.path, &mut out);
    out.push('\n');
    canonical_query(request.query, &mut out);
    out.push('\n');
    for name in signed_headers.split(';') {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for value in (request.headers)(name) {
            if !first {
                out.push(',');
            }
            first = false;
            push_trimmed(&String::from_utf8_lossy(value), &mut out);
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_headers);
    out.push('\n');
    out.push_str(payload_sha256);
    out
}

/// The path with `.` and `..` segments resolved and empty segments dropped
/// (AWS's normalization for every service but S3), each byte outside the
/// unreserved set and `/` encoded: `%` too, hence the double encoding.
fn canonical_uri(path: &str, out: &mut String) {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    out.push('/');
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        encode_into(segment.as_bytes(), out);
    }
    if !segments.is_empty() && path.ends_with('/') {
        out.push('/');
    }
}

/// Each parameter decoded and encoded again in the strict form, sorted by
/// name and then value; a parameter without `=` gets an empty value.
fn canonical_query(query: &str, out: &mut String) {
    if query.is_empty() {
        return;
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let mut encoded = (String::new(), String::new());
            encode_into(&percent_decode(name), &mut encoded.0);
            encode_into(&percent_decode(value), &mut encoded.1);
            encoded
        })
        .collect();
    pairs.sort_unstable();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// SigV4's URI encoding: `A-Z a-z 0-9 - . _ ~` as they are, every other
/// byte as `%XX` with uppercase hex.
fn encode_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

/// A header value trimmed, each run of spaces inside it as one space.
fn push_trimmed(value: &str, out: &mut String) {
    for (i, word) in value.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// The string to sign: algorithm, request time, scope, the hash of the
/// canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The key of one access key for one day, region and service:
/// `HMAC("AWS4" + secret, date)`, then the region, the service and the
/// terminator in turn.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let secret = format!("AWS4{secret}");
    let key = hmac(secret.as_bytes(), date.as_bytes());
    let key = hmac(&key, region.as_bytes());
    let key = hmac(&key, service.as_bytes());
    hmac(&key, TERMINATOR.as_bytes())
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The signature of `string_to_sign`, in lowercase hex.
pub fn signature(key: &[u8; 32], string_to_sign: &str) -> String {
    hex(&hmac(key, string_to_sign.as_bytes()))
}

/// Whether `signature` (hex, as the client sent it) is the HMAC of
/// `string_to_sign`: compared by `hmac` in constant time.
pub fn signature_matches(key: &[u8; 32], string_to_sign: &str, signature: &str) -> bool {
    let Some(claimed) = unhex(signature) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&claimed).is_ok()
}

/// The SHA-256 of a payload, in lowercase hex.
pub fn payload_sha256(payload: &[u8]) -> String {
    hex(&Sha256::digest(payload))
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// 64 hex digits (either case) as 32 bytes.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
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
        let canonical =
            canonical_request(&request, auth.signed_headers, &payload_sha256(case.body));
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
}
