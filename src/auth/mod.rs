//! Who may call: SigV4 verification of every API request against the keys
//! of `auth.credentials_file`, the admin keys, and TLS.
//!
//! Requests are checked as AWS checks them, and refused with the errors
//! AWS sends (403 and `X-Amzn-ErrorType`), so that SDKs react as they do to
//! the real service: no retry on a bad key, their clock-skew handling on
//! "Signature expired".
//!
//! # Limits
//! No IAM policies: every key of the file may call every API route, and an
//! admin key also `/admin/v1/*`. Only static keys: a request signed with
//! temporary credentials (`X-Amz-Security-Token`) is answered as one with an
//! unknown key. Only the header form: presigned URLs are not accepted.

pub mod credentials;
pub mod sigv4;
pub mod tls;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::HttpRequest;

use crate::config::{AuthConfig, AuthMode};
use credentials::Credentials;
use sigv4::Authorization;

/// How far a request's `X-Amz-Date` may be from the server's clock, either
/// way: AWS allows 5 minutes.
pub const ALLOWED_SKEW_SECONDS: i64 = 5 * 60;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `/healthz`, `/readyz`, `/metrics`: open, they reveal no association data.
    Open,
    /// An API route, signed for this SigV4 service name (`eks`, or
    /// `eks-auth` for the EKS Auth API).
    Api(&'static str),
    /// `/admin/v1/*`: signed for `eks` with a key of `auth.admin_access_key_ids`.
    Admin,
}

/// Why a request was refused, in AWS's terms; each variant is one wire
/// error type (`api::error` maps them), the string its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header.
    MissingToken,
    /// The header or the date is missing or malformed.
    IncompleteSignature(String),
    /// The access key ID is not in the credentials file.
    UnrecognizedClient(String),
    /// A wrong signature, scope or date.
    InvalidSignature(String),
    /// A valid key without the right to the route.
    AccessDenied(String),
}

/// The server's authentication: none, or SigV4 against a key file.
pub struct Auth {
    verifier: Option<Verifier>,
}

struct Verifier {
    region: String,
    file: PathBuf,
    admins: HashSet<String>,
    /// Swapped whole on reload, so a request sees the old or the new keys,
    /// never a mix.
    keys: RwLock<Arc<KeySet>>,
}

/// The keys of one reading of the file, with the signing keys derived from
/// them. A reload starts a new cache with the new set, so a signing key
/// derived from a secret that has since changed dies with its set.
struct KeySet {
    credentials: Credentials,
    /// By credential (`AKID/date/region/service/aws4_request`): deriving
    /// one takes four HMACs, and a client signs many requests a day.
    signing_keys: RwLock<HashMap<String, [u8; 32]>>,
}

/// More distinct keys, days and services than this in one cache means
/// someone is cycling scopes: start over rather than grow.
const MAX_CACHED_SIGNING_KEYS: usize = 4096;

impl KeySet {
    fn new(credentials: Credentials) -> Arc<KeySet> {
        Arc::new(KeySet {
            credentials,
            signing_keys: RwLock::new(HashMap::new()),
        })
    }

    fn signing_key(&self, auth: &Authorization<'_>, secret: &str) -> [u8; 32] {
        if let Some(key) = read(&self.signing_keys).get(auth.credential) {
            return *key;
        }
        let key = sigv4::signing_key(secret, auth.date, auth.region, auth.service);
        let mut cache = self.signing_keys.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED_SIGNING_KEYS {
            cache.clear();
        }
        cache.insert(auth.credential.to_owned(), key);
        key
    }
}

/// A read lock; a panic elsewhere cannot leave these maps half-written.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

impl Auth {
    /// No authentication (`auth.mode = "none"`): every request is served.
    pub fn none() -> Auth {
        Auth { verifier: None }
    }

    /// The authentication `config` asks for, its key file read and checked;
    /// `Err` is one line naming the file or setting and what to change.
    pub fn from_config(config: &AuthConfig, region: &str) -> Result<Auth, String> {
        if config.mode == AuthMode::None {
            return Ok(Auth::none());
        }
        let file = config
            .credentials_file
            .clone()
            .ok_or("auth.mode = \"sigv4\" needs auth.credentials_file")?;
        let credentials = Credentials::load(&file).map_err(|e| e.to_string())?;
        for id in &config.admin_access_key_ids {
            if credentials.secret(id).is_none() {
                return Err(format!(
                    "auth.admin_access_key_ids names {id}, which is not in the credentials file {} \
                     (auth.credentials_file): add its key pair there or remove it",
                    file.display()
                ));
            }
        }
        log::info!(
            "SigV4 authentication on: {} keys from {} ({} of them admin keys)",
            credentials.len(),
            file.display(),
            config.admin_access_key_ids.len()
        );
        Ok(Auth {
            verifier: Some(Verifier {
                region: region.to_owned(),
                file,
                admins: config.admin_access_key_ids.iter().cloned().collect(),
                keys: RwLock::new(KeySet::new(credentials)),
            }),
        })
    }

    /// Reads the credentials file again (on SIGHUP). A file that is now
    /// refused leaves the keys loaded before in force; the log says why.
    pub fn reload(&self) {
        let Some(verifier) = &self.verifier else {
            log::info!("SIGHUP received: nothing to reload (auth.mode = \"none\")");
            return;
        };
        let file = verifier.file.display();
        match Credentials::load(&verifier.file) {
            Ok(credentials) => {
                let missing: Vec<&String> = verifier
                    .admins
                    .iter()
                    .filter(|id| credentials.secret(id).is_none())
                    .collect();
                if !missing.is_empty() {
                    log::warn!(
                        "the reloaded credentials file {file} lacks the admin keys {missing:?} \
                         (auth.admin_access_key_ids): they can no longer sign requests"
                    );
                }
                log::info!(
                    "SIGHUP received: reloaded {} keys from {file}",
                    credentials.len()
                );
                *verifier.keys.write().unwrap_or_else(|e| e.into_inner()) =
                    KeySet::new(credentials);
            }
            Err(e) => {
                let kept = read(&verifier.keys).credentials.len();
                log::warn!("SIGHUP received: kept the {kept} keys loaded before: {e}");
            }
        }
    }

    /// Checks a request's signature and rights. `payload` is the body as
    /// received; `None` when it could not be read, in which case everything
    /// but the signature itself is checked and the caller reports the body.
    pub fn check(
        &self,
        req: &HttpRequest,
        access: Access,
        payload: Option<&[u8]>,
    ) -> Result<(), AuthError> {
        let Some(verifier) = &self.verifier else {
            return Ok(());
        };
        let service = match access {
            Access::Open => return Ok(()),
            Access::Api(service) => service,
            Access::Admin => "eks",
        };
        let headers = req.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let Some(authorization) = header("authorization").filter(|h| !h.trim().is_empty()) else {
            return Err(AuthError::MissingToken);
        };
        let request = sigv4::Request {
            method: req.method().as_str(),
            path: req.uri().path(),
            query: req.uri().query().unwrap_or(""),
            headers: |name: &str| headers.get_all(name).map(|v| v.as_bytes()),
        };
        let signed = SignedRequest {
            authorization,
            amz_date: header("x-amz-date"),
            content_sha256: header("x-amz-content-sha256"),
        };
        let access_key_id =
            verifier.verify(&request, &signed, service, payload, SystemTime::now())?;
        if access == Access::Admin && !verifier.admins.contains(access_key_id) {
            return Err(AuthError::AccessDenied(format!(
                "The access key {access_key_id} is not authorized to call the admin routes \
                 (/admin/v1/*): sign with a key listed in the server's auth.admin_access_key_ids."
            )));
        }
        Ok(())
    }
}

/// The headers that carry a request's signature.
struct SignedRequest<'a> {
    authorization: &'a str,
    amz_date: Option<&'a str>,
    content_sha256: Option<&'a str>,
}

impl Verifier {
    /// The access key ID of a correctly signed request.
    fn verify<'a, H, I>(
        &self,
        request: &sigv4::Request<'_, H>,
        signed: &SignedRequest<'a>,
        service: &str,
        payload: Option<&[u8]>,
        now: SystemTime,
    ) -> Result<&'a str, AuthError>
    where
        H: Fn(&str) -> I,
        I: Iterator<Item = &'a [u8]>,
    {
        let header = signed.authorization;
        let auth = Authorization::parse(header).map_err(AuthError::IncompleteSignature)?;
        let Some(amz_date) = signed.amz_date else {
            return Err(AuthError::IncompleteSignature(format!(
                "Authorization header requires existence of an 'X-Amz-Date' header (the signing \
                 time in ISO 8601 basic format, e.g. 20150830T123600Z). Authorization={header}"
            )));
        };
        let Some(signed_at) = parse_amz_date(amz_date) else {
            return Err(AuthError::IncompleteSignature(format!(
                "Date must be in ISO-8601 'basic format' (e.g. 20150830T123600Z). Got \
                 '{amz_date}'."
            )));
        };
        if auth.terminator != sigv4::TERMINATOR {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped with a valid terminator: '{}', not '{}'.",
                sigv4::TERMINATOR,
                auth.terminator
            )));
        }
        if auth.date != &amz_date[..8] {
            return Err(AuthError::InvalidSignature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{}' != '{}', from '{amz_date}'.",
                auth.date,
                &amz_date[..8]
            )));
        }
        if auth.region != self.region {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped to a valid region. This server's region is '{}' \
                 (aws.region), not '{}': configure the client for it.",
                self.region, auth.region
            )));
        }
        if auth.service != service {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped to correct service: '{service}'. The request was \
                 signed for '{}'.",
                auth.service
            )));
        }
        let keys = Arc::clone(&read(&self.keys));
        let Some(secret) = keys.credentials.secret(auth.access_key_id) else {
            return Err(AuthError::UnrecognizedClient(format!(
                "The security token included in the request is invalid. The access key ID {} is \
                 not in this server's credentials file.",
                auth.access_key_id
            )));
        };
        let now_seconds = unix_seconds(now);
        let earliest = now_seconds - ALLOWED_SKEW_SECONDS;
        let latest = now_seconds + ALLOWED_SKEW_SECONDS;
        if signed_at < earliest {
            return Err(AuthError::InvalidSignature(format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
                format_amz_date(earliest),
                format_amz_date(now_seconds)
            )));
        }
        if signed_at > latest {
            // AWS says "Signature not yet current" here; the issue this
            // implements asks for the "Signature expired:" form both ways,
            // which is what clients look for to correct their clock.
            return Err(AuthError::InvalidSignature(format!(
                "Signature expired: {amz_date} is now later than {} ({} + 5 min.)",
                format_amz_date(latest),
                format_amz_date(now_seconds)
            )));
        }
        let Some(payload) = payload else {
            return Ok(auth.access_key_id);
        };
        let payload_sha256 = sigv4::payload_sha256(payload);
        if let Some(claimed) = signed.content_sha256 {
            if !claimed.eq_ignore_ascii_case(&payload_sha256) {
                return Err(AuthError::InvalidSignature(format!(
                    "{MISMATCH} The X-Amz-Content-Sha256 header ({claimed}) is not the SHA-256 of \
                     the body received ({payload_sha256})."
                )));
            }
        }
        let canonical = sigv4::canonical_request(request, auth.signed_headers, &payload_sha256);
        let to_sign = sigv4::string_to_sign(amz_date, auth.scope, &canonical);
        let key = keys.signing_key(&auth, secret);
        if !sigv4::signature_matches(&key, &to_sign, auth.signature) {
            return Err(AuthError::InvalidSignature(format!(
                "{MISMATCH}\n\nThe Canonical String for this request should have been\n\
                 '{canonical}'\n\nThe String-to-Sign should have been\n'{to_sign}'\n"
            )));
        }
        Ok(auth.access_key_id)
    }
}

/// AWS's words for a signature that does not match.
const MISMATCH: &str = "The request signature we calculated does not match the signature you \
                        provided. Check your AWS Secret Access Key and signing method. Consult \
                        the service documentation for details.";

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// `YYYYMMDDTHHMMSSZ` as seconds since the epoch.
fn parse_amz_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8]
            .iter()
            .chain(&bytes[9..15])
            .all(u8::is_ascii_digit);
    if !shape_ok {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(number(0..4)?).ok()?,
        month,
        u8::try_from(number(6..8)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(number(9..11)?).ok()?,
        u8::try_from(number(11..13)?).ok()?,
        u8::try_from(number(13..15)?).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Seconds since the epoch as `YYYYMMDDTHHMMSSZ`.
fn format_amz_date(seconds: i64) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(seconds) else {
        return seconds.to_string();
    };
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests;
