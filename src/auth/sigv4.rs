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
mod tests;
