//! The route table: method and raw path to a typed endpoint.
//!
//! Labels arrive percent-encoded, and an ARN label carries encoded `/` and
//! `:` (spec §1.4), so the raw path is split on `/` first and each segment
//! decoded after. Decoding first would break `/tags/{resourceArn}`.

use actix_web::http::Method;

use super::error::{ApiError, ErrorType};

/// The one table of operations. Each becomes a variant of [`Endpoint`]
/// with its path labels (decoded, not yet validated); its name, in logs and
/// metrics, is the variant's name. The `aws` ones are the AWS APIs this
/// server imitates, which fault rules can name; the `server` ones are its
/// own admin, health and metrics routes, which never meet a fault.
macro_rules! operations {
    (
        aws { $($(#[$adoc:meta])* $aws:ident $({ $($alabel:ident),+ })?,)+ }
        server { $($(#[$sdoc:meta])* $server:ident $({ $($slabel:ident),+ })?,)+ }
    ) => {
        /// One operation of the API with its path labels, decoded but not yet validated.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Endpoint {
            $($(#[$adoc])* $aws $({ $($alabel: String),+ })?,)+
            $($(#[$sdoc])* $server $({ $($slabel: String),+ })?,)+
        }

        /// Every operation name, for the request metrics; `-` is an unknown route.
        pub const OPERATIONS: &[&str] = &[$(stringify!($aws),)+ $(stringify!($server),)+ "-"];

        /// The operations of the AWS APIs, the ones fault rules can name.
        pub const AWS_OPERATIONS: &[&str] = &[$(stringify!($aws),)+];

        impl Endpoint {
            /// The operation's name, for logs and metrics.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Endpoint::$aws { .. } => stringify!($aws),)+
                    $(Endpoint::$server { .. } => stringify!($server),)+
                }
            }

            /// Whether this is an operation of the AWS APIs (not one of the
            /// server's own routes): only those meet injected faults.
            pub fn is_aws_operation(&self) -> bool {
                match self {
                    $(Endpoint::$aws { .. } => true,)+
                    $(Endpoint::$server { .. } => false,)+
                }
            }
        }
    };
}

operations! {
    aws {
        CreateCluster,
        ListClusters,
        DescribeCluster { name },
        DeleteCluster { name },
        CreatePodIdentityAssociation { cluster },
        ListPodIdentityAssociations { cluster },
        DescribePodIdentityAssociation { cluster, id },
        UpdatePodIdentityAssociation { cluster, id },
        DeletePodIdentityAssociation { cluster, id },
        TagResource { arn },
        UntagResource { arn },
        ListTagsForResource { arn },
        /// `POST /clusters/{cluster}/assume-role-for-pod-identity` (EKS Auth).
        AssumeRoleForPodIdentity { cluster },
    }
    server {
        /// `PUT /admin/v1/clusters/{name}/status`: set a cluster's status (testing aid).
        SetClusterStatus { name },
        /// `POST /admin/v1/clock`: move the server's clock forward; served only
        /// with `testing.clock_control`.
        AdvanceClock,
        /// `GET /admin/v1/export`: every cluster and association as JSON lines.
        Export,
        /// `GET /admin/v1/faults`: the fault rules in force.
        GetFaults,
        /// `PUT /admin/v1/faults`: replace every fault rule.
        PutFaults,
        /// `DELETE /admin/v1/faults`: remove every fault rule.
        DeleteFaults,
        /// `GET /id/{id}/.well-known/openid-configuration`: a cluster issuer's discovery document.
        IssuerConfiguration { id },
        /// `GET /id/{id}/keys`: a cluster issuer's JWKS.
        IssuerKeys { id },
        /// `POST /admin/v1/clusters/{name}/service-account-token`: a token signed by the cluster.
        IssueServiceAccountToken { name },
        /// `PUT /admin/v1/clusters/{name}/service-account-issuer`: trust an external issuer.
        PutServiceAccountIssuer { name },
        /// `DELETE /admin/v1/clusters/{name}/service-account-issuer`.
        DeleteServiceAccountIssuer { name },
        /// `GET /admin/v1/credentials/{access_key_id}`: what minted credentials are for.
        DescribeCredentials { access_key_id },
        /// `GET /healthz`: the process answers.
        Health,
        /// `GET /readyz`: the store is open and takes writes.
        Ready,
        /// `GET /metrics`: Prometheus text format.
        Metrics,
    }
}

impl Endpoint {
    /// The cluster a pod identity operation names, for the `clusterName` of its errors.
    pub fn cluster_label(&self) -> Option<&str> {
        match self {
            Endpoint::CreatePodIdentityAssociation { cluster }
            | Endpoint::ListPodIdentityAssociations { cluster }
            | Endpoint::DescribePodIdentityAssociation { cluster, .. }
            | Endpoint::UpdatePodIdentityAssociation { cluster, .. }
            | Endpoint::DeletePodIdentityAssociation { cluster, .. }
            | Endpoint::AssumeRoleForPodIdentity { cluster } => {
                Some(cluster.as_str()).filter(|c| !c.is_empty())
            }
            _ => None,
        }
    }

    /// The endpoint of a request. `clock_control`: whether `POST
    /// /admin/v1/clock` is served; without it that path is unknown.
    pub fn parse(
        method: &Method,
        raw_path: &str,
        clock_control: bool,
    ) -> Result<Endpoint, ApiError> {
        let raw: Vec<&str> = raw_path
            .strip_prefix('/')
            .unwrap_or(raw_path)
            .split('/')
            .collect();
        let segments = raw
            .iter()
            .map(|s| percent_decode(s))
            .collect::<Result<Vec<_>, _>>()?;
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let m = method.as_str();
        let not_allowed = |allow: &str| Err(ApiError::method_not_allowed(m, raw_path, allow));
        match segments[..] {
            ["clusters"] => match m {
                "POST" => Ok(Endpoint::CreateCluster),
                "GET" => Ok(Endpoint::ListClusters),
                _ => not_allowed("GET, POST"),
            },
            ["clusters", name] => {
                let name = name.to_owned();
                match m {
                    "GET" => Ok(Endpoint::DescribeCluster { name }),
                    "DELETE" => Ok(Endpoint::DeleteCluster { name }),
                    _ => not_allowed("GET, DELETE"),
                }
            }
            ["clusters", cluster, "pod-identity-associations"] => {
                let cluster = cluster.to_owned();
                match m {
                    "POST" => Ok(Endpoint::CreatePodIdentityAssociation { cluster }),
                    "GET" => Ok(Endpoint::ListPodIdentityAssociations { cluster }),
                    _ => not_allowed("GET, POST"),
                }
            }
            ["clusters", cluster, "pod-identity-associations", id] => {
                let (cluster, id) = (cluster.to_owned(), id.to_owned());
                match m {
                    "GET" => Ok(Endpoint::DescribePodIdentityAssociation { cluster, id }),
                    "POST" => Ok(Endpoint::UpdatePodIdentityAssociation { cluster, id }),
                    "DELETE" => Ok(Endpoint::DeletePodIdentityAssociation { cluster, id }),
                    _ => not_allowed("GET, POST, DELETE"),
                }
            }
            ["clusters", cluster, "assume-role-for-pod-identity"] => match m {
                "POST" => Ok(Endpoint::AssumeRoleForPodIdentity {
                    cluster: cluster.to_owned(),
                }),
                _ => not_allowed("POST"),
            },
            ["id", id, ".well-known", "openid-configuration"] => match m {
                "GET" => Ok(Endpoint::IssuerConfiguration { id: id.to_owned() }),
                _ => not_allowed("GET"),
            },
            ["id", id, "keys"] => match m {
                "GET" => Ok(Endpoint::IssuerKeys { id: id.to_owned() }),
                _ => not_allowed("GET"),
            },
            ["admin", "v1", "clusters", name, "service-account-token"] => match m {
                "POST" => Ok(Endpoint::IssueServiceAccountToken { name: name.to_owned() }),
                _ => not_allowed("POST"),
            },
            ["admin", "v1", "clusters", name, "service-account-issuer"] => {
                let name = name.to_owned();
                match m {
                    "PUT" => Ok(Endpoint::PutServiceAccountIssuer { name }),
                    "DELETE" => Ok(Endpoint::DeleteServiceAccountIssuer { name }),
                    _ => not_allowed("PUT, DELETE"),
                }
            }
            ["admin", "v1", "credentials", access_key_id] => match m {
                "GET" => Ok(Endpoint::DescribeCredentials {
                    access_key_id: access_key_id.to_owned(),
                }),
                _ => not_allowed("GET"),
            },
            ["tags", arn] => {
                let arn = arn.to_owned();
                match m {
                    "POST" => Ok(Endpoint::TagResource { arn }),
                    "DELETE" => Ok(Endpoint::UntagResource { arn }),
                    "GET" => Ok(Endpoint::ListTagsForResource { arn }),
                    _ => not_allowed("GET, POST, DELETE"),
                }
            }
            ["healthz"] | ["readyz"] | ["metrics"] if m != "GET" => not_allowed("GET"),
            ["healthz"] => Ok(Endpoint::Health),
            ["readyz"] => Ok(Endpoint::Ready),
            ["metrics"] => Ok(Endpoint::Metrics),
            ["admin", "v1", "clusters", name, "status"] => match m {
                "PUT" => Ok(Endpoint::SetClusterStatus { name: name.to_owned() }),
                _ => not_allowed("PUT"),
            },
            ["admin", "v1", "clock"] if clock_control => match m {
                "POST" => Ok(Endpoint::AdvanceClock),
                _ => not_allowed("POST"),
            },
            ["admin", "v1", "export"] => match m {
                "GET" => Ok(Endpoint::Export),
                _ => not_allowed("GET"),
            },
            ["admin", "v1", "faults"] => match m {
                "GET" => Ok(Endpoint::GetFaults),
                "PUT" => Ok(Endpoint::PutFaults),
                "DELETE" => Ok(Endpoint::DeleteFaults),
                _ => not_allowed("GET, PUT, DELETE"),
            },
            _ => Err(ApiError::new(
                ErrorType::UnknownOperationException,
                format!("No operation matches {m} {raw_path}; see the EKS API reference for the routes this server serves."),
            )),
        }
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8.
pub fn percent_decode(segment: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::invalid_parameter(format!(
            "{segment} is not valid percent-encoded UTF-8; encode reserved characters as %XX.",
            segment = crate::domain::shown(segment)
        ))
    };
    if !segment.contains('%') {
        return Ok(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse(method: Method, path: &str) -> Result<Endpoint, ApiError> {
        Endpoint::parse(&method, path, false)
    }

    #[test]
    fn an_arn_label_is_decoded_after_the_path_is_split() {
        let path = "/tags/arn%3Aaws%3Aeks%3Aus-west-2%3A111122223333%3Apodidentityassociation%2Fc1%2Fa-abc";
        assert_eq!(
            parse(Method::POST, path).unwrap(),
            Endpoint::TagResource {
                arn: "arn:aws:eks:us-west-2:111122223333:podidentityassociation/c1/a-abc".into()
            }
        );
    }

    #[test]
    fn update_is_post_on_the_describe_path() {
        let path = "/clusters/c1/pod-identity-associations/a-8mvwvh57cu74mgcst";
        assert!(matches!(
            parse(Method::GET, path),
            Ok(Endpoint::DescribePodIdentityAssociation { .. })
        ));
        assert!(matches!(
            parse(Method::POST, path),
            Ok(Endpoint::UpdatePodIdentityAssociation { .. })
        ));
        assert!(matches!(
            parse(Method::DELETE, path),
            Ok(Endpoint::DeletePodIdentityAssociation { .. })
        ));
        assert_eq!(parse(Method::PUT, path).unwrap_err().status(), 405);
    }

    #[test]
    fn the_export_is_a_get_on_the_admin_path() {
        assert_eq!(
            parse(Method::GET, "/admin/v1/export").unwrap(),
            Endpoint::Export
        );
        assert_eq!(
            parse(Method::POST, "/admin/v1/export")
                .unwrap_err()
                .status(),
            405
        );
    }

    #[test]
    fn an_empty_label_is_kept_for_validation() {
        assert_eq!(
            parse(Method::GET, "/clusters//pod-identity-associations/a-1").unwrap(),
            Endpoint::DescribePodIdentityAssociation {
                cluster: String::new(),
                id: "a-1".into()
            }
        );
    }

    #[test]
    fn every_endpoint_name_is_a_metrics_operation() {
        let endpoints = [
            parse(Method::POST, "/clusters"),
            parse(Method::GET, "/clusters/c/pod-identity-associations/a"),
            parse(Method::PUT, "/admin/v1/clusters/c/status"),
            parse(Method::GET, "/metrics"),
            Endpoint::parse(&Method::POST, "/admin/v1/clock", true),
        ];
        for endpoint in endpoints {
            assert!(OPERATIONS.contains(&endpoint.unwrap().name()));
        }
    }

    #[test]
    fn only_the_aws_operations_can_meet_faults() {
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/admin/v1/export",
            "/admin/v1/faults",
        ] {
            assert!(
                !parse(Method::GET, path).unwrap().is_aws_operation(),
                "{path}"
            );
        }
        let describe = parse(Method::GET, "/clusters/c/pod-identity-associations/a").unwrap();
        assert!(describe.is_aws_operation());
        assert!(AWS_OPERATIONS.contains(&describe.name()));
        assert!(!AWS_OPERATIONS.contains(&"PutFaults"));
    }

    #[test]
    fn the_clock_route_exists_only_with_clock_control() {
        let on = |method| Endpoint::parse(&method, "/admin/v1/clock", true);
        assert_eq!(on(Method::POST).unwrap(), Endpoint::AdvanceClock);
        assert_eq!(on(Method::GET).unwrap_err().status(), 405);
        for method in [Method::POST, Method::GET] {
            let err = parse(method, "/admin/v1/clock").unwrap_err();
            assert_eq!(err.kind, ErrorType::UnknownOperationException);
            assert_eq!(err.status(), 404);
        }
    }

    #[test]
    fn unknown_routes_are_unknown_operations() {
        for path in [
            "/",
            "/nope",
            "/clusters/c1/nodegroups",
            "/clusters/c1/pod-identity-associations/a/b",
        ] {
            let err = parse(Method::GET, path).unwrap_err();
            assert_eq!(err.kind, ErrorType::UnknownOperationException, "{path}");
            assert_eq!(err.status(), 404);
        }
    }

    #[test]
    fn percent_decoding_rejects_broken_escapes_and_invalid_utf8() {
        assert_eq!(percent_decode("a%20b%2Fc").unwrap(), "a b/c");
        assert!(percent_decode("a%2").is_err());
        assert!(percent_decode("a%zz").is_err());
        assert!(percent_decode("%ff").is_err());
    }

    /// Every byte outside the unreserved set as `%XX`.
    fn encoded(label: &str) -> String {
        label
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    #[test]
    fn any_label_survives_percent_encoding_and_decoding() {
        crate::props::check("percent round trip", 512, ".*", |label: String| {
            prop_assert_eq!(percent_decode(&encoded(&label)).unwrap(), label.clone());
            if !label.contains('%') {
                prop_assert_eq!(percent_decode(&label).unwrap(), label);
            }
            Ok(())
        });
    }

    #[test]
    fn any_segment_decodes_or_is_refused_as_a_client_error() {
        let segment = prop_oneof![".*", "(%[0-9a-fA-F]{0,2}|[^%]{0,3}){0,8}"];
        crate::props::check("percent decoding", 512, segment, |segment: String| {
            match percent_decode(&segment) {
                Ok(decoded) => prop_assert!(decoded.len() <= segment.len()),
                Err(e) => prop_assert_eq!(e.status(), 400),
            }
            Ok(())
        });
    }

    #[test]
    fn any_method_and_path_routes_or_is_refused_as_a_client_error() {
        let method = prop_oneof![
            Just(Method::GET),
            Just(Method::POST),
            Just(Method::PUT),
            Just(Method::DELETE),
            Just(Method::PATCH),
            "[A-Z]{1,8}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
        ];
        let part = prop_oneof![
            Just("clusters".to_owned()),
            Just("pod-identity-associations".to_owned()),
            Just("tags".to_owned()),
            Just("admin".to_owned()),
            Just("v1".to_owned()),
            Just("status".to_owned()),
            ".{0,12}",
        ];
        let path = prop_oneof![
            ".*",
            prop::collection::vec(part, 0..6).prop_map(|parts| format!("/{}", parts.join("/"))),
        ];
        let input = (method, path, any::<bool>());
        crate::props::check("routing", 512, input, |(method, path, clock)| {
            if let Err(e) = Endpoint::parse(&method, &path, clock) {
                prop_assert!(e.status().is_client_error(), "{} {path}: {e:?}", method);
            }
            Ok(())
        });
    }

    #[test]
    fn every_route_takes_its_labels_whatever_they_hold() {
        crate::props::check("labels", 512, (".*", ".*"), |(a, b): (String, String)| {
            let (ea, eb) = (encoded(&a), encoded(&b));
            let routes = [
                (
                    Method::GET,
                    format!("/clusters/{ea}"),
                    Endpoint::DescribeCluster { name: a.clone() },
                ),
                (
                    Method::DELETE,
                    format!("/clusters/{ea}"),
                    Endpoint::DeleteCluster { name: a.clone() },
                ),
                (
                    Method::POST,
                    format!("/clusters/{ea}/pod-identity-associations"),
                    Endpoint::CreatePodIdentityAssociation { cluster: a.clone() },
                ),
                (
                    Method::GET,
                    format!("/clusters/{ea}/pod-identity-associations"),
                    Endpoint::ListPodIdentityAssociations { cluster: a.clone() },
                ),
                (
                    Method::GET,
                    format!("/clusters/{ea}/pod-identity-associations/{eb}"),
                    Endpoint::DescribePodIdentityAssociation {
                        cluster: a.clone(),
                        id: b.clone(),
                    },
                ),
                (
                    Method::POST,
                    format!("/clusters/{ea}/pod-identity-associations/{eb}"),
                    Endpoint::UpdatePodIdentityAssociation {
                        cluster: a.clone(),
                        id: b.clone(),
                    },
                ),
                (
                    Method::DELETE,
                    format!("/clusters/{ea}/pod-identity-associations/{eb}"),
                    Endpoint::DeletePodIdentityAssociation {
                        cluster: a.clone(),
                        id: b.clone(),
                    },
                ),
                (
                    Method::POST,
                    format!("/tags/{ea}"),
                    Endpoint::TagResource { arn: a.clone() },
                ),
                (
                    Method::DELETE,
                    format!("/tags/{ea}"),
                    Endpoint::UntagResource { arn: a.clone() },
                ),
                (
                    Method::GET,
                    format!("/tags/{ea}"),
                    Endpoint::ListTagsForResource { arn: a.clone() },
                ),
                (
                    Method::PUT,
                    format!("/admin/v1/clusters/{ea}/status"),
                    Endpoint::SetClusterStatus { name: a.clone() },
                ),
            ];
            for (method, path, expected) in routes {
                prop_assert_eq!(parse(method, &path).unwrap(), expected, "{}", path);
            }
            Ok(())
        });
    }
}
