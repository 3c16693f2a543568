//! `nextToken`s: opaque to clients, checked by the server.
//!
//! A token is the last key a page returned, in hex, and a check value over
//! the listing it belongs to (operation, cluster, filters) and that key,
//! keyed with a secret kept in the store. A token for another cluster or
//! filter, an edited token, or one this server never issued fails the check.
//! Pages continue after the last key, so every item that exists for the
//! whole listing is returned exactly once, whatever is created or deleted
//! between pages. The check value is FNV-1a, not a cryptographic MAC: it
//! catches mistakes, it does not stop a determined forger (who could only
//! start a listing at a key of their choice).

use super::error::ApiError;
use super::input::Query;

#[derive(Debug, Clone)]
pub struct PageTokens {
    secret: [u8; 16],
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex digits only, as `hex` writes them: `from_str_radix` alone
/// would also take `+` and capitals, so that many texts opened as one token.
fn is_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !is_hex(text) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

impl PageTokens {
    pub fn new(secret: [u8; 16]) -> Self {
        PageTokens { secret }
    }

    fn check(&self, listing: &str, last: &[u8]) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let parts: [&[u8]; 4] = [&self.secret, listing.as_bytes(), &[0], last];
        for byte in parts.iter().flat_map(|p| p.iter()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash
    }

    /// Where a request's page of `listing` starts: after the key its
    /// `nextToken` carries, or at the beginning without one (an empty
    /// `nextToken` counts as none, as the SDKs send it).
    pub fn resume_after(&self, listing: &str, query: &Query) -> Result<Option<String>, ApiError> {
        query
            .first("nextToken")
            .filter(|token| !token.is_empty())
            .map(|token| self.open(listing, token))
            .transpose()
    }

    /// The `nextToken` of a page of `listing`: one that continues after its
    /// `last` key when `more` items follow, else none.
    pub fn next_token(&self, listing: &str, more: bool, last: Option<&str>) -> Option<String> {
        last.filter(|_| more).map(|last| self.issue(listing, last))
    }

    /// The token that continues `listing` after `last`.
    fn issue(&self, listing: &str, last: &str) -> String {
        format!(
            "{}.{:016x}",
            hex(last.as_bytes()),
            self.check(listing, last.as_bytes())
        )
    }

    /// The `last` key of a token issued for `listing`.
    fn open(&self, listing: &str, token: &str) -> Result<String, ApiError> {
        let invalid = || {
            ApiError::invalid_parameter(format!(
                "nextToken {token} was not issued by this server for this listing; pass the \
                 nextToken of the previous answer with the same cluster and filters, or none to start over.", token = crate::domain::shown(token)))
        };
        let (last, check) = token.split_once('.').ok_or_else(invalid)?;
        let last = unhex(last).ok_or_else(invalid)?;
        if check.len() != 16 || !is_hex(check) {
            return Err(invalid());
        }
        let check = u64::from_str_radix(check, 16).map_err(|_| invalid())?;
        if check != self.check(listing, &last) {
            return Err(invalid());
        }
        String::from_utf8(last).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_token_opens_only_for_the_listing_and_server_that_issued_it() {
        let tokens = PageTokens::new([7; 16]);
        let token = tokens.issue("associations/c1", "a-8mvwvh57cu74mgcst");
        assert_eq!(
            tokens.open("associations/c1", &token).unwrap(),
            "a-8mvwvh57cu74mgcst"
        );
        assert!(tokens.open("associations/c2", &token).is_err());
        assert!(PageTokens::new([8; 16])
            .open("associations/c1", &token)
            .is_err());
        let edited = token.replacen('6', "7", 1);
        assert!(tokens.open("associations/c1", &edited).is_err());
        for garbage in ["", ".", "zz.00", "abc", "61.zz"] {
            assert!(
                tokens.open("associations/c1", garbage).is_err(),
                "{garbage}"
            );
        }
    }

    #[test]
    fn a_page_continues_after_its_last_key_only_when_more_follow() {
        let tokens = PageTokens::new([7; 16]);
        assert_eq!(tokens.next_token("clusters", false, Some("c9")), None);
        assert_eq!(tokens.next_token("clusters", true, None), None);
        let token = tokens.next_token("clusters", true, Some("c9")).unwrap();
        let query = Query::parse(&format!("nextToken={token}")).unwrap();
        assert_eq!(
            tokens.resume_after("clusters", &query).unwrap().as_deref(),
            Some("c9")
        );
        for start in ["", "nextToken="] {
            let query = Query::parse(start).unwrap();
            assert_eq!(tokens.resume_after("clusters", &query).unwrap(), None);
        }
    }

    #[test]
    fn any_key_comes_back_from_its_token_and_only_from_it() {
        let input = (any::<[u8; 16]>(), ".{0,40}", ".{0,40}", ".{0,80}");
        crate::props::check(
            "nextToken round trip",
            512,
            input,
            |(secret, listing, other, last)| {
                let tokens = PageTokens::new(secret);
                let token = tokens.issue(&listing, &last);
                prop_assert_eq!(tokens.open(&listing, &token).unwrap(), last);
                if other != listing {
                    prop_assert!(tokens.open(&other, &token).is_err());
                }
                Ok(())
            },
        );
    }

    #[test]
    fn any_text_as_a_token_opens_only_as_what_was_issued_or_is_a_client_error() {
        let token = prop_oneof![
            ".*",
            "[0-9a-fA-F+]{0,12}\\.[0-9a-fA-F+-]{0,18}",
            (".{0,20}").prop_map(|last| PageTokens::new([7; 16]).issue("clusters", &last)),
            (".{0,20}", 0..40usize, any::<char>()).prop_map(|(last, at, c)| {
                let mut token: Vec<char> = PageTokens::new([7; 16])
                    .issue("clusters", &last)
                    .chars()
                    .collect();
                let at = at % token.len();
                token[at] = c;
                token.into_iter().collect()
            }),
        ];
        crate::props::check("nextToken codec", 512, token, |token: String| {
            let tokens = PageTokens::new([7; 16]);
            match tokens.open("clusters", &token) {
                Ok(last) => prop_assert_eq!(tokens.issue("clusters", &last), token.clone()),
                Err(e) => prop_assert_eq!(e.status(), 400),
            }
            let query = Query::parse(&format!("nextToken={}", encode(&token)));
            if let Ok(query) = query {
                if let Err(e) = tokens.resume_after("clusters", &query) {
                    prop_assert_eq!(e.status(), 400);
                }
            }
            Ok(())
        });
    }

    fn encode(text: &str) -> String {
        text.bytes().map(|b| format!("%{b:02X}")).collect()
    }
}
