//! Fault rules: what `[[faults.rules]]` in the config and the body of `PUT
//! /admin/v1/faults` say, validated. Both are read member by member from
//! JSON values (the config's TOML tables arrive as JSON values), so that
//! every refusal names the rule and the field, which serde's own messages
//! do not.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::api::AWS_OPERATIONS;
use crate::domain::ClusterName;

/// `operations = ["*"]`: every operation that can meet a fault.
pub const ANY_OPERATION: &str = "*";
/// The EKS Auth operation. Accepted in rules whether or not this build
/// serves its route, so that one set of rules fits every build.
pub const ASSUME_ROLE_FOR_POD_IDENTITY: &str = "AssumeRoleForPodIdentity";
/// The operations whose changes a `propagation_delay` rule holds back.
pub const ASSOCIATION_WRITES: [&str; 3] = [
    "CreatePodIdentityAssociation",
    "UpdatePodIdentityAssociation",
    "DeletePodIdentityAssociation",
];
/// Longest `latency`: a longer wait looks like a dead server to clients,
/// whose own timeouts are about a minute.
pub const MAX_LATENCY_MS: u64 = 60_000;
/// Longest `propagation_delay`: EKS speaks of seconds; an hour is a mistake.
pub const MAX_PROPAGATION_DELAY_MS: u64 = 3_600_000;
/// Most tokens a throttle's bucket holds.
pub const MAX_BURST: u64 = 1_000_000;

/// The `[faults]` section of the config. Off by default: no rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultsConfig {
    /// Seed of the one generator every random choice draws from.
    pub seed: u64,
    /// The rules, checked by [`FaultSpec::from_config`] with the same
    /// fields as the JSON of `PUT /admin/v1/faults`.
    pub rules: Vec<Value>,
}

/// A set of rules in force and the seed their generator starts from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    pub seed: u64,
    pub rules: Vec<Rule>,
}

/// One rule: which requests it applies to, and what it does to them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `None`: every operation (`["*"]`).
    pub operations: Option<Vec<&'static str>>,
    /// `None`: every cluster, and requests that name none.
    pub clusters: Option<Vec<String>>,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Throttle {
        rate_per_second: f64,
        burst: u32,
    },
    Error {
        error: InjectedError,
        probability: f64,
    },
    ErrorAfterCommit {
        probability: f64,
    },
    Latency {
        min_ms: u64,
        max_ms: u64,
        probability: f64,
    },
    PropagationDelay {
        delay_ms: u64,
        lists: bool,
    },
}

/// The errors a rule can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedError {
    /// 429 `ThrottlingException`.
    Throttling,
    /// 500 `ServerException`.
    Server,
    /// 503 `ServiceUnavailableException`.
    ServiceUnavailable,
}

impl InjectedError {
    pub fn name(self) -> &'static str {
        match self {
            InjectedError::Throttling => "ThrottlingException",
            InjectedError::Server => "ServerException",
            InjectedError::ServiceUnavailable => "ServiceUnavailableException",
        }
    }
}

/// What was wrong with a rule: the field (`rules[2].probability`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct RuleError {
    pub field: String,
    pub problem: String,
}

const KINDS: [&str; 5] = [
    "throttle",
    "error",
    "error_after_commit",
    "latency",
    "propagation_delay",
];
const COMMON_FIELDS: [&str; 3] = ["operations", "clusters", "kind"];

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Throttle { .. } => "throttle",
            Kind::Error { .. } => "error",
            Kind::ErrorAfterCommit { .. } => "error_after_commit",
            Kind::Latency { .. } => "latency",
            Kind::PropagationDelay { .. } => "propagation_delay",
        }
    }

    fn fields(kind: &str) -> &'static [&'static str] {
        match kind {
            "throttle" => &["rate_per_second", "burst"],
            "error" => &["type", "probability"],
            "error_after_commit" => &["probability"],
            "latency" => &["min_ms", "max_ms", "probability"],
            _ => &["delay_ms", "lists"],
        }
    }
}

/// Every operation name a rule may use.
pub fn known_operations() -> impl Iterator<Item = &'static str> {
    AWS_OPERATIONS.iter().copied().chain(
        (!AWS_OPERATIONS.contains(&ASSUME_ROLE_FOR_POD_IDENTITY))
            .then_some(ASSUME_ROLE_FOR_POD_IDENTITY),
    )
}

impl FaultSpec {
    /// The rules of the config's `[faults]` section.
    pub fn from_config(config: &FaultsConfig) -> Result<FaultSpec, RuleError> {
        Ok(FaultSpec {
            seed: config.seed,
            rules: parse_rules(&config.rules)?,
        })
    }

    /// The body of `PUT /admin/v1/faults`: `{"seed": N, "rules": [...]}`.
    /// `seed` defaults to 0; `rules` is required (send `[]` for none).
    pub fn from_json(body: &Map<String, Value>) -> Result<FaultSpec, RuleError> {
        if let Some(unknown) = body
            .keys()
            .find(|k| !["seed", "rules"].contains(&k.as_str()))
        {
            return Err(RuleError {
                field: unknown.clone(),
                problem: "is not a member of the faults document; it has only seed and rules"
                    .into(),
            });
        }
        let seed = match body.get("seed") {
            None | Some(Value::Null) => 0,
            Some(value) => value.as_u64().ok_or_else(|| RuleError {
                field: "seed".into(),
                problem: format!(
                    "must be a whole number from 0 to {} (got {value})",
                    u64::MAX
                ),
            })?,
        };
        let rules = match body.get("rules") {
            Some(Value::Array(rules)) => parse_rules(rules)?,
            None | Some(Value::Null) => {
                return Err(RuleError {
                    field: "rules".into(),
                    problem: "is required; send [] to remove every rule".into(),
                })
            }
            Some(other) => {
                return Err(RuleError {
                    field: "rules".into(),
                    problem: format!("must be an array of rules (got {other})"),
                })
            }
        };
        Ok(FaultSpec { seed, rules })
    }

    /// The JSON form `GET /admin/v1/faults` answers: every field of every
    /// rule, defaults filled in, so that it can be sent back with PUT.
    pub fn to_json(&self) -> Value {
        json!({
            "seed": self.seed,
            "rules": self.rules.iter().map(Rule::to_json).collect::<Vec<_>>(),
        })
    }
}

fn parse_rules(rules: &[Value]) -> Result<Vec<Rule>, RuleError> {
    rules
        .iter()
        .enumerate()
        .map(|(index, rule)| Rule::parse(index, rule))
        .collect()
}

/// One rule's members, read with errors that name the rule and the field.
struct Fields<'a> {
    index: usize,
    map: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn error(&self, field: &str, problem: impl Into<String>) -> RuleError {
        RuleError {
            field: format!("rules[{}].{field}", self.index),
            problem: problem.into(),
        }
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn required(&self, field: &str) -> Result<&Value, RuleError> {
        self.get(field)
            .ok_or_else(|| self.error(field, "is required for this kind of rule"))
    }

    fn strings(&self, field: &str) -> Result<Option<Vec<&str>>, RuleError> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let must = || {
            self.error(
                field,
                format!("must be a non-empty array of strings (got {value})"),
            )
        };
        let items = value
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(must)?;
        items
            .iter()
            .map(|item| item.as_str().ok_or_else(must))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn probability(&self) -> Result<f64, RuleError> {
        match self.get("probability") {
            None => Ok(1.0),
            Some(value) => value
                .as_f64()
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| {
                    self.error(
                        "probability",
                        format!("must be a number from 0 to 1 (got {value})"),
                    )
                }),
        }
    }

    fn whole(&self, field: &str, min: u64, max: u64) -> Result<u64, RuleError> {
        let value = self.required(field)?;
        value
            .as_u64()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                self.error(
                    field,
                    format!("must be a whole number from {min} to {max} (got {value})"),
                )
            })
    }
}

impl Rule {
    fn parse(index: usize, value: &Value) -> Result<Rule, RuleError> {
        let Some(map) = value.as_object() else {
            return Err(RuleError {
                field: format!("rules[{index}]"),
                problem: format!(
                    "must be an object with operations, kind and its fields (got {value})"
                ),
            });
        };
        let f = Fields { index, map };
        let kind = match f.get("kind") {
            Some(Value::String(kind)) if KINDS.contains(&kind.as_str()) => kind.as_str(),
            Some(other) => {
                return Err(f.error(
                    "kind",
                    format!("must be one of {} (got {other})", KINDS.join(", ")),
                ))
            }
            None => {
                return Err(f.error("kind", format!("is required: one of {}", KINDS.join(", "))))
            }
        };
        let allowed = Kind::fields(kind);
        if let Some(unknown) = map
            .keys()
            .find(|k| !COMMON_FIELDS.contains(&k.as_str()) && !allowed.contains(&k.as_str()))
        {
            return Err(f.error(
                unknown,
                format!(
                    "is not a field of kind {kind}; its fields are {}",
                    COMMON_FIELDS
                        .iter()
                        .chain(allowed)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let operations = f.strings("operations")?.ok_or_else(|| {
            f.error(
                "operations",
                "is required: operation names, or [\"*\"] for all",
            )
        })?;
        let operations = if operations.contains(&ANY_OPERATION) {
            None
        } else {
            let named = operations
                .iter()
                .map(|name| {
                    known_operations()
                        .find(|known| known == name)
                        .ok_or_else(|| {
                            f.error(
                                "operations",
                                format!(
                                "names {}, which is not an operation that can meet a fault; use \
                                 \"*\" or some of {}",
                                crate::domain::shown(name),
                                known_operations().collect::<Vec<_>>().join(", ")
                            ),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(named)
        };
        let clusters = f
            .strings("clusters")?
            .map(|names| {
                names
                    .iter()
                    .map(|name| {
                        ClusterName::parse("clusters", name)
                            .map(|n| n.as_str().to_owned())
                            .map_err(|e| f.error("clusters", format!("has an invalid name: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let kind = match kind {
            "throttle" => {
                let rate = f.required("rate_per_second")?;
                let rate_per_second = rate
                    .as_f64()
                    .filter(|r| *r > 0.0 && r.is_finite())
                    .ok_or_else(|| {
                        f.error(
                            "rate_per_second",
                            format!(
                                "must be a number above 0, in requests per second (got {rate})"
                            ),
                        )
                    })?;
                let burst = f.whole("burst", 1, MAX_BURST)? as u32;
                Kind::Throttle {
                    rate_per_second,
                    burst,
                }
            }
            "error" => {
                let error = match f.get("type") {
                    None => InjectedError::Server,
                    Some(Value::String(t)) if t == "ServerException" => InjectedError::Server,
                    Some(Value::String(t)) if t == "ServiceUnavailableException" => {
                        InjectedError::ServiceUnavailable
                    }
                    Some(other) => {
                        return Err(f.error(
                            "type",
                            format!(
                                "must be \"ServerException\" (500) or \
                                 \"ServiceUnavailableException\" (503) (got {other})"
                            ),
                        ))
                    }
                };
                Kind::Error {
                    error,
                    probability: f.probability()?,
                }
            }
            "error_after_commit" => Kind::ErrorAfterCommit {
                probability: f.probability()?,
            },
            "latency" => {
                let min_ms = f.whole("min_ms", 0, MAX_LATENCY_MS)?;
                let max_ms = f.whole("max_ms", 0, MAX_LATENCY_MS)?;
                if min_ms > max_ms {
                    return Err(f.error(
                        "min_ms",
                        format!("must not be above max_ms (got min_ms {min_ms}, max_ms {max_ms})"),
                    ));
                }
                Kind::Latency {
                    min_ms,
                    max_ms,
                    probability: f.probability()?,
                }
            }
            _ => {
                let delay_ms = f.whole("delay_ms", 1, MAX_PROPAGATION_DELAY_MS)?;
                let lists = match f.get("lists") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => {
                        return Err(f.error("lists", format!("must be true or false (got {other})")))
                    }
                };
                Kind::PropagationDelay { delay_ms, lists }
            }
        };
        Ok(Rule {
            operations,
            clusters,
            kind,
        })
    }

    fn to_json(&self) -> Value {
        let mut rule = Map::new();
        let operations = self
            .operations
            .clone()
            .unwrap_or_else(|| vec![ANY_OPERATION]);
        rule.insert("operations".into(), json!(operations));
        if let Some(clusters) = &self.clusters {
            rule.insert("clusters".into(), json!(clusters));
        }
        rule.insert("kind".into(), json!(self.kind.name()));
        let fields = match &self.kind {
            Kind::Throttle {
                rate_per_second,
                burst,
            } => {
                json!({ "rate_per_second": rate_per_second, "burst": burst })
            }
            Kind::Error { error, probability } => {
                json!({ "type": error.name(), "probability": probability })
            }
            Kind::ErrorAfterCommit { probability } => json!({ "probability": probability }),
            Kind::Latency {
                min_ms,
                max_ms,
                probability,
            } => {
                json!({ "min_ms": min_ms, "max_ms": max_ms, "probability": probability })
            }
            Kind::PropagationDelay { delay_ms, lists } => {
                json!({ "delay_ms": delay_ms, "lists": lists })
            }
        };
        if let Value::Object(fields) = fields {
            rule.extend(fields);
        }
        Value::Object(rule)
    }

    /// Whether the rule applies to a request of `operation` about `cluster`
    /// (`None`: the request names no cluster in its path).
    pub fn applies_to(&self, operation: &str, cluster: Option<&str>) -> bool {
        let operation_matches = self
            .operations
            .as_ref()
            .is_none_or(|names| names.contains(&operation));
        let cluster_matches = match (&self.clusters, cluster) {
            (None, _) => true,
            (Some(names), Some(cluster)) => names.iter().any(|n| n == cluster),
            (Some(_), None) => false,
        };
        operation_matches && cluster_matches
    }

    /// Whether a `propagation_delay` rule holds back a change that
    /// `operation` made to an association of `cluster`: its operations name
    /// that write, or a reader that sees the delay (AssumeRoleForPodIdentity,
    /// ListPodIdentityAssociations), or are `["*"]`.
    pub fn delays(&self, operation: &str, cluster: &str) -> bool {
        let readers = [ASSUME_ROLE_FOR_POD_IDENTITY, "ListPodIdentityAssociations"];
        readers
            .iter()
            .chain(&[operation])
            .any(|name| self.applies_to(name, Some(cluster)))
    }
}

#[cfg(test)]
mod tests;
