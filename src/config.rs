//! One typed configuration. Defaults live here; `config/default.toml`
//! documents each setting with the same default (a test keeps them equal).
//! Precedence: command-line flag > environment variable > config file > default.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::{AwsIdentity, ClusterName, ClusterStatus};
use crate::faults::{FaultSpec, FaultsConfig, RuleError};
use crate::store::StoreSettings;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub aws: AwsConfig,
    pub clusters: ClustersConfig,
    pub idempotency: IdempotencyConfig,
    pub limits: LimitsConfig,
    pub eks_auth: EksAuthConfig,
    pub testing: TestingConfig,
    pub auth: AuthConfig,
    /// Switchable faults for testing clients (`docs/faults.md`); no rules by default.
    pub faults: FaultsConfig,
}

/// Aids for tests that drive the real server; all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingConfig {
    /// Serve `POST /admin/v1/clock`, which moves the server's clock forward
    /// (token expiry, the token sweep, cluster activation) without waiting.
    pub clock_control: bool,
}

/// Where AssumeRoleForPodIdentity's credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialsKind {
    /// Minted by this server.
    Local,
    /// From an STS endpoint (AssumeRole).
    Sts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EksAuthConfig {
    /// The credential provider of AssumeRoleForPodIdentity.
    pub credentials: CredentialsKind,
    /// How long the credentials it answers are valid, in seconds.
    pub session_duration_seconds: u32,
    /// The `sts` credential provider.
    pub sts: StsConfig,
}

impl EksAuthConfig {
    /// STS's bounds for an AssumeRole `DurationSeconds` (15 minutes to the
    /// longest a role's maximum session can be, 12 hours).
    pub const MIN_SESSION_DURATION_SECONDS: u32 = 900;
    pub const MAX_SESSION_DURATION_SECONDS: u32 = 43_200;
}

impl Default for EksAuthConfig {
    fn default() -> Self {
        EksAuthConfig {
            credentials: CredentialsKind::Local,
            session_duration_seconds: 3600,
            sts: StsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StsConfig {
    /// The STS endpoint (`http://` or `https://`); unset, the SDK resolves
    /// it for `aws.region` (which also honours `AWS_ENDPOINT_URL_STS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most associations one cluster can have (EKS: 5,000, not adjustable).
    pub associations_per_cluster: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            associations_per_cluster: 5_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to serve on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// How long requests in flight may take to finish after SIGTERM or SIGINT.
    pub shutdown_timeout_seconds: u64,
    /// How long a request's body may take to arrive once its head has; a
    /// connection that stalls mid-body gets 408 and is closed.
    pub body_read_timeout_seconds: u64,
    /// Most connections open at once, over all HTTP workers; past it new
    /// connections wait in the listen backlog.
    pub max_connections: usize,
    /// HTTPS instead of HTTP when both files are set.
    pub tls: TlsConfig,
    /// The base of every cluster's token issuer URL; empty: the scheme the
    /// server serves and the address it listens on.
    pub public_url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `none`: every request is served; `sigv4`: every API request must be
    /// signed (AWS Signature Version 4) with a key of `credentials_file`.
    pub mode: AuthMode,
    /// AWS shared-credentials file; every key pair in it is accepted.
    pub credentials_file: Option<PathBuf>,
    /// Access key IDs that may also call `/admin/v1/*`.
    pub admin_access_key_ids: Vec<String>,
    /// Whether `mode = "none"` may serve on an address other than loopback.
    pub allow_anonymous_remote: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    None,
    Sigv4,
}

impl ServerConfig {
    /// The base URL of issuer URLs, given the address actually bound.
    pub fn public_url_or(&self, bound: SocketAddr) -> String {
        if self.public_url.is_empty() {
            let scheme = if self.tls.cert_file.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{bound}")
        } else {
            self.public_url.trim_end_matches('/').to_owned()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory of the sled store; created when missing.
    pub data_dir: PathBuf,
    /// Bytes of sled's page cache (`DEFAULT_CACHE_CAPACITY_BYTES`). It fills
    /// only as pages are read; lower it to cap the memory of a large store.
    pub cache_capacity_bytes: u64,
    /// Whether a store this server creates compresses sled's pages (zstd).
    /// Its data dir is then much smaller, and its writes cost more CPU
    /// (`docs/performance.md`). sled cannot change it for a store: one
    /// keeps what it was created with.
    pub compression: bool,
    /// How often sled's own flush thread runs, in milliseconds, which is
    /// what moves live pages out of half-empty log segments so they are
    /// reused (`DEFAULT_SEGMENT_CLEANING_INTERVAL_MS`); 0 turns it off.
    pub segment_cleaning_interval_ms: u64,
}

impl StoreConfig {
    /// Often enough that a store grown through the API stays within a small
    /// multiple of its record bytes on disk (without the cleaning, sled's
    /// log keeps growing with half-empty segments), rarely enough that the
    /// durable write rate does not measurably drop. Each run also fsyncs
    /// the data file, which the disk sees as a flush even when the server
    /// is idle. The measurements are in `docs/performance.md`.
    pub const DEFAULT_SEGMENT_CLEANING_INTERVAL_MS: u64 = 20;
    /// Every second already cleaned about as little as never: a value above
    /// a minute is a mistake. 0 turns the cleaning off.
    pub const MAX_SEGMENT_CLEANING_INTERVAL_MS: u64 = 60_000;
    /// The default page cache: 1 GiB, sled's own default. On a large store
    /// a smaller cache keeps evicting nodes that the next random lookup
    /// pages in again from the data file, and lookups slow down. sled fills
    /// its cache only as it reads, so the idle server at start holds no
    /// more than with a smaller one. The measurements (`cargo bench --bench
    /// scale`) are in `docs/performance.md`.
    pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 1024 * 1024 * 1024;
    /// Below this sled would spend its time evicting and re-reading pages.
    pub const MIN_CACHE_CAPACITY_BYTES: u64 = 1024 * 1024;
    /// Above this the value is almost surely a typo (a unit too many).
    pub const MAX_CACHE_CAPACITY_BYTES: u64 = 1024 * 1024 * 1024 * 1024;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Region in every ARN; also decides the partition (cn-* → aws-cn, us-gov-* → aws-us-gov).
    pub region: String,
    /// Account in every ARN; role ARNs given as `roleArn` must be in this account.
    pub account_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClustersConfig {
    /// How long a new cluster stays CREATING before it reads as ACTIVE.
    pub activation_delay_ms: u64,
    /// Cluster states in which associations may be created or changed.
    pub writable_states: Vec<ClusterStatus>,
    /// Clusters created at start-up when missing.
    pub preset: Vec<PresetCluster>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetCluster {
    pub name: String,
    #[serde(default = "PresetCluster::default_status")]
    pub status: ClusterStatus,
}

impl PresetCluster {
    fn default_status() -> ClusterStatus {
        ClusterStatus::Active
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// How long a clientRequestToken is remembered.
    pub token_ttl_seconds: u64,
    /// How often expired tokens are removed.
    pub sweep_interval_seconds: u64,
}

impl ServerConfig {
    pub const MAX_BODY_READ_TIMEOUT_SECONDS: u64 = 3600;
    pub const MAX_CONNECTIONS: usize = 1_000_000;
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            shutdown_timeout_seconds: 10,
            body_read_timeout_seconds: 30,
            max_connections: 10_000,
            tls: TlsConfig::default(),
            public_url: String::new(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("./data"),
            cache_capacity_bytes: Self::DEFAULT_CACHE_CAPACITY_BYTES,
            compression: false,
            segment_cleaning_interval_ms: Self::DEFAULT_SEGMENT_CLEANING_INTERVAL_MS,
        }
    }
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
        }
    }
}

impl Default for ClustersConfig {
    fn default() -> Self {
        ClustersConfig {
            activation_delay_ms: 0,
            writable_states: vec![ClusterStatus::Active, ClusterStatus::Updating],
            preset: Vec::new(),
        }
    }
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            token_ttl_seconds: 86_400,
            sweep_interval_seconds: 60,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting {key} = {value}: {rule}")]
    Invalid {
        key: &'static str,
        value: String,
        rule: String,
    },
    #[error("invalid setting faults.{0}")]
    Faults(#[from] RuleError),
}

/// Settings given on the command line or in the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub cache_capacity_bytes: Option<u64>,
    pub compression: Option<bool>,
}

impl Config {
    /// Defaults, then the file (if any), then the overrides; then validation.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        if let Some(listen) = overrides.listen {
            config.server.listen = listen;
        }
        if let Some(data_dir) = overrides.data_dir {
            config.store.data_dir = data_dir;
        }
        if let Some(bytes) = overrides.cache_capacity_bytes {
            config.store.cache_capacity_bytes = bytes;
        }
        if let Some(compression) = overrides.compression {
            config.store.compression = compression;
        }
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        // toml's message names the key and shows the line; fold it to one line.
        toml::from_str(text).map_err(|e| {
            e.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |key: &'static str, value: &dyn std::fmt::Debug, rule: &str| ConfigError::Invalid {
                key,
                value: format!("{value:?}"),
                rule: rule.to_owned(),
            };
        if self.server.max_body_bytes == 0 {
            return Err(invalid("server.max_body_bytes", &0, "must be at least 1"));
        }
        let body_timeout = self.server.body_read_timeout_seconds;
        if !(1..=ServerConfig::MAX_BODY_READ_TIMEOUT_SECONDS).contains(&body_timeout) {
            return Err(invalid(
                "server.body_read_timeout_seconds",
                &body_timeout,
                &format!(
                    "must be between 1 and {} (one hour)",
                    ServerConfig::MAX_BODY_READ_TIMEOUT_SECONDS
                ),
            ));
        }
        let connections = self.server.max_connections;
        if !(1..=ServerConfig::MAX_CONNECTIONS).contains(&connections) {
            return Err(invalid(
                "server.max_connections",
                &connections,
                &format!(
                    "must be between 1 and {}; each connection needs a file descriptor \
                     (ulimit -n)",
                    ServerConfig::MAX_CONNECTIONS
                ),
            ));
        }
        if self.store.data_dir.as_os_str().is_empty() {
            return Err(invalid(
                "store.data_dir",
                &self.store.data_dir,
                "must not be empty",
            ));
        }
        let cache = self.store.cache_capacity_bytes;
        if !(StoreConfig::MIN_CACHE_CAPACITY_BYTES..=StoreConfig::MAX_CACHE_CAPACITY_BYTES)
            .contains(&cache)
        {
            return Err(invalid(
                "store.cache_capacity_bytes",
                &cache,
                &format!(
                    "must be between {} (1 MiB) and {} (1 TiB) bytes",
                    StoreConfig::MIN_CACHE_CAPACITY_BYTES,
                    StoreConfig::MAX_CACHE_CAPACITY_BYTES
                ),
            ));
        }
        let cleaning = self.store.segment_cleaning_interval_ms;
        if cleaning > StoreConfig::MAX_SEGMENT_CLEANING_INTERVAL_MS {
            return Err(invalid(
                "store.segment_cleaning_interval_ms",
                &cleaning,
                &format!(
                    "must be at most {} (one minute); 0 turns the cleaning off",
                    StoreConfig::MAX_SEGMENT_CLEANING_INTERVAL_MS
                ),
            ));
        }
        if !is_region(&self.aws.region) {
            return Err(invalid(
                "aws.region",
                &self.aws.region,
                "must be an AWS region name such as us-east-1",
            ));
        }
        if self.aws.account_id.len() != 12
            || !self.aws.account_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid(
                "aws.account_id",
                &self.aws.account_id,
                "must be 12 digits",
            ));
        }
        if self.idempotency.token_ttl_seconds == 0 {
            return Err(invalid(
                "idempotency.token_ttl_seconds",
                &0,
                "must be at least 1",
            ));
        }
        if self.idempotency.sweep_interval_seconds == 0 {
            return Err(invalid(
                "idempotency.sweep_interval_seconds",
                &0,
                "must be at least 1",
            ));
        }
        if self.limits.associations_per_cluster == 0 {
            return Err(invalid(
                "limits.associations_per_cluster",
                &0,
                "must be at least 1",
            ));
        }
        if let Some(url) = &self.eks_auth.sts.endpoint_url {
            if !is_http_url(url) {
                return Err(invalid(
                    "eks_auth.sts.endpoint_url",
                    url,
                    "must be an http:// or https:// URL with a host, such as https://sts.us-east-1.amazonaws.com",
                ));
            }
        }
        self.validate_security()?;
        FaultSpec::from_config(&self.faults)?;
        let url = &self.server.public_url;
        if !url.is_empty()
            && (!(url.starts_with("http://") || url.starts_with("https://"))
                || url.contains(['?', '#', ' ']))
        {
            return Err(invalid(
                "server.public_url",
                url,
                "must be empty or an http:// or https:// URL without query or fragment, such \
                 as https://pod-identity.example.com",
            ));
        }
        let duration = self.eks_auth.session_duration_seconds;
        if !(EksAuthConfig::MIN_SESSION_DURATION_SECONDS
            ..=EksAuthConfig::MAX_SESSION_DURATION_SECONDS)
            .contains(&duration)
        {
            return Err(invalid(
                "eks_auth.session_duration_seconds",
                &duration,
                &format!(
                    "must be between {} (15 minutes) and {} (12 hours), STS's bounds",
                    EksAuthConfig::MIN_SESSION_DURATION_SECONDS,
                    EksAuthConfig::MAX_SESSION_DURATION_SECONDS
                ),
            ));
        }
        let mut names = HashSet::new();
        for preset in &self.clusters.preset {
            ClusterName::parse("name", &preset.name)
                .map_err(|e| invalid("clusters.preset.name", &preset.name, &e.to_string()))?;
            if !names.insert(&preset.name) {
                return Err(invalid(
                    "clusters.preset.name",
                    &preset.name,
                    "is listed twice",
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    /// What the store needs to know of the configuration.
    pub fn store_settings(&self) -> StoreSettings {
        StoreSettings {
            identity: AwsIdentity::new(&self.aws.region, &self.aws.account_id),
            writable_states: self.clusters.writable_states.clone(),
            token_ttl_seconds: self.idempotency.token_ttl_seconds,
            activation_delay_ms: self.clusters.activation_delay_ms,
            associations_per_cluster: self.limits.associations_per_cluster,
            cache_capacity_bytes: self.store.cache_capacity_bytes,
            compression: self.store.compression,
            segment_cleaning_interval_ms: self.store.segment_cleaning_interval_ms,
        }
    }
}

/// `http://HOST…` or `https://HOST…`: a URL the SDK can send requests to.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

impl Config {
    /// The `auth` and `server.tls` settings, and that a server reachable
    /// from other hosts does not serve everyone by accident.
    fn validate_security(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, value: String, rule: &str| ConfigError::Invalid {
            key,
            value,
            rule: rule.to_owned(),
        };
        let auth = &self.auth;
        match auth.mode {
            AuthMode::Sigv4 if auth.credentials_file.is_none() => {
                return Err(invalid(
                    "auth.credentials_file",
                    "(not set)".into(),
                    "must name a key file (AWS shared-credentials format) when auth.mode = \"sigv4\"",
                ));
            }
            AuthMode::None
                if auth.credentials_file.is_some() || !auth.admin_access_key_ids.is_empty() =>
            {
                return Err(invalid(
                    "auth.mode",
                    "\"none\"".into(),
                    "checks no signature, yet auth.credentials_file or auth.admin_access_key_ids \
                     is set: set auth.mode = \"sigv4\" to use them, or remove them",
                ));
            }
            _ => {}
        }
        if let Some(empty) = auth
            .admin_access_key_ids
            .iter()
            .find(|id| id.trim().is_empty())
        {
            return Err(invalid(
                "auth.admin_access_key_ids",
                format!("{empty:?}"),
                "must list access key IDs, none of them empty",
            ));
        }
        let listen = self.server.listen;
        if auth.mode == AuthMode::None && !listen.ip().is_loopback() && !auth.allow_anonymous_remote
        {
            return Err(invalid(
                "server.listen",
                listen.to_string(),
                "is not a loopback address, and auth.mode = \"none\" would let anyone who can \
                 reach it change or download every association: set auth.mode = \"sigv4\" with \
                 auth.credentials_file, or auth.allow_anonymous_remote = true to serve \
                 unauthenticated on purpose",
            ));
        }
        let tls = &self.server.tls;
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            let (key, value) = match &tls.cert_file {
                Some(cert) => (
                    "server.tls.key_file",
                    format!("(not set; cert_file = {cert:?})"),
                ),
                None => ("server.tls.cert_file", "(not set)".into()),
            };
            return Err(invalid(
                key,
                value,
                "server.tls.cert_file and server.tls.key_file go together: set both for HTTPS, or neither",
            ));
        }
        Ok(())
    }
}

/// `xx-name-N` or `xx-name-name-N`, e.g. `us-east-1`, `us-gov-west-1`, `cn-north-1`.
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

#[cfg(test)]
mod tests;
