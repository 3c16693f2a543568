//! Request input: the JSON body and the query string, read member by member
//! so that every refusal names the member (serde's own messages do not).

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::HttpRequest;
use serde_json::{Map, Value};

use super::error::{ApiError, ErrorType};
use super::router::percent_decode;
use crate::domain::ClientRequestToken;

/// A request body: a JSON object, or nothing (then every member is absent).
/// Members the server does not know are ignored, as newer clients send them.
#[derive(Debug, Default)]
pub struct JsonBody(Map<String, Value>);

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(member: &str, expected: &str, value: &Value) -> ApiError {
    ApiError::invalid_parameter(format!(
        "{member} must be {expected}, but the request gave {}.",
        json_type(value)
    ))
}

impl JsonBody {
    /// Checks the Content-Type of a non-empty body (415 otherwise, as the
    /// Smithy restJson1 server tests require) and parses it.
    pub fn from_request(req: &HttpRequest, bytes: &[u8]) -> Result<JsonBody, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody::default());
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            let shown = if content_type.is_empty() {
                "none"
            } else {
                content_type
            };
            return Err(ApiError::new(
                ErrorType::UnsupportedMediaTypeException,
                format!("The request body must be sent with Content-Type: application/json (got {shown})."),
            ));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(JsonBody(map)),
            Ok(other) => Err(ApiError::invalid_parameter(format!(
                "The request body must be a JSON object, but it is {}.",
                json_type(&other)
            ))),
            Err(e) => Err(ApiError::invalid_parameter(format!(
                "The request body is not valid JSON: {e}."
            ))),
        }
    }

    /// Every member, for a body read as a whole document.
    pub fn members(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The member's value; JSON `null` counts as absent.
    fn get(&self, member: &str) -> Option<&Value> {
        self.0.get(member).filter(|v| !v.is_null())
    }

    pub fn string(&self, member: &str) -> Result<Option<&str>, ApiError> {
        match self.get(member) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(member, "a string", other)),
        }
    }

    pub fn required_string(&self, member: &str) -> Result<&str, ApiError> {
        self.string(member)?.ok_or_else(|| required(member))
    }

    pub fn bool(&self, member: &str) -> Result<Option<bool>, ApiError> {
        match self.get(member) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(member, "a boolean", other)),
        }
    }

    pub fn number(&self, member: &str) -> Result<Option<f64>, ApiError> {
        match self.get(member) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(wrong_type(member, "a number", other)),
        }
    }

    pub fn object(&self, member: &str) -> Result<Option<&Map<String, Value>>, ApiError> {
        match self.get(member) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(wrong_type(member, "an object", other)),
        }
    }

    /// `clientRequestToken`, the idempotency token of the create and update operations.
    pub fn client_request_token(&self) -> Result<Option<ClientRequestToken>, ApiError> {
        Ok(self
            .string("clientRequestToken")?
            .map(ClientRequestToken::parse)
            .transpose()?)
    }

    /// A map of strings to strings, such as `tags`.
    pub fn string_map(&self, member: &str) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        let Some(map) = self.object(member)? else {
            return Ok(None);
        };
        map.iter()
            .map(|(key, value)| match value {
                Value::String(s) => Ok((key.clone(), s.clone())),
                other => Err(wrong_type(&format!("{member}.{key}"), "a string", other)),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

pub fn required(member: &str) -> ApiError {
    ApiError::invalid_parameter(format!("{member} is required; add it to the request."))
}

/// Query parameters, decoded. For a member given twice the first value
/// counts (Smithy); list members repeat their key.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: &str) -> Result<Query, ApiError> {
        raw.split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                let name = percent_decode(name)?;
                let value = percent_decode(value).map_err(|mut e| {
                    e.message = format!("query parameter {name}: {}", e.message);
                    e
                })?;
                Ok((name, value))
            })
            .collect::<Result<_, _>>()
            .map(Query)
    }

    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a list member, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `maxResults`: an integer from 1 to 100, 100 when absent (Model).
    pub fn max_results(&self) -> Result<usize, ApiError> {
        let Some(text) = self.first("maxResults") else {
            return Ok(100);
        };
        match text.parse::<i64>() {
            Ok(n @ 1..=100) => Ok(n as usize),
            _ => Err(ApiError::invalid_parameter(format!(
                "maxResults must be an integer from 1 to 100 (got {text}).",
                text = crate::domain::shown(text)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn body(content_type: &str, text: &str) -> Result<JsonBody, ApiError> {
        let req = TestRequest::default()
            .insert_header((header::CONTENT_TYPE, content_type))
            .to_http_request();
        JsonBody::from_request(&req, text.as_bytes())
    }

    #[test]
    fn an_absent_or_empty_object_body_has_no_members() {
        let req = TestRequest::default().to_http_request();
        assert!(JsonBody::from_request(&req, b"")
            .unwrap()
            .string("roleArn")
            .unwrap()
            .is_none());
        assert!(body("application/json", "{}")
            .unwrap()
            .string("roleArn")
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_body_that_is_not_application_json_is_unsupported_media() {
        let err = body("text/plain", "{}").unwrap_err();
        assert_eq!(err.status(), 415);
        assert!(body("application/json; charset=utf-8", "{}").is_ok());
    }

    #[test]
    fn wrong_member_types_name_the_member() {
        let b = body("application/json", r#"{"roleArn": 5, "tags": {"k": 1}}"#).unwrap();
        assert!(b
            .string("roleArn")
            .unwrap_err()
            .message
            .contains("roleArn must be a string"));
        assert!(b.string_map("tags").unwrap_err().message.contains("tags.k"));
        assert!(b
            .required_string("namespace")
            .unwrap_err()
            .message
            .contains("namespace is required"));
    }

    #[test]
    fn malformed_json_and_non_objects_are_invalid_parameters() {
        assert_eq!(
            body("application/json", "{").unwrap_err().kind,
            ErrorType::InvalidParameterException
        );
        assert_eq!(
            body("application/json", "[]").unwrap_err().kind,
            ErrorType::InvalidParameterException
        );
    }

    #[test]
    fn query_values_are_decoded_and_the_first_of_a_repeated_name_counts() {
        let q = Query::parse("nextToken=tok%2F%2B%3D&maxResults=5&maxResults=7").unwrap();
        assert_eq!(q.first("nextToken"), Some("tok/+="));
        assert_eq!(q.max_results().unwrap(), 5);
        assert!(Query::parse("maxResults=0").unwrap().max_results().is_err());
        assert!(Query::parse("maxResults=101")
            .unwrap()
            .max_results()
            .is_err());
        assert!(Query::parse("maxResults=x").unwrap().max_results().is_err());
        assert_eq!(Query::parse("").unwrap().max_results().unwrap(), 100);
        let err = Query::parse("nextToken=%FF%FE").unwrap_err();
        assert!(err.message.contains("nextToken"), "{}", err.message);
    }
}
