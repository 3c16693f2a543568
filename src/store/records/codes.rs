//! Code tables: the byte each stored enum value is written as.
//!
//! A code is chosen once, written out here by hand, and never changes or is
//! reused; it does not follow the order, the names or the serde attributes of
//! the domain's enum. A new domain variant gets the next free code here.

use serde::{Deserialize, Serialize};

use crate::domain::ClusterStatus;

/// Each value of an enum and the byte stored for it: the one place that
/// both the encoding and the decoding read.
pub struct CodeTable<T: 'static> {
    /// What the codes stand for, in errors ("cluster status").
    what: &'static str,
    codes: &'static [(T, u8)],
}

impl<T: Copy + PartialEq + std::fmt::Debug> CodeTable<T> {
    /// A table whose codes are all different (checked when the constant is
    /// built, so a table with a code twice does not compile).
    pub const fn new(what: &'static str, codes: &'static [(T, u8)]) -> Self {
        let mut i = 0;
        while i < codes.len() {
            let mut j = i + 1;
            while j < codes.len() {
                assert!(codes[i].1 != codes[j].1, "a code is in the table twice");
                j += 1;
            }
            i += 1;
        }
        CodeTable { what, codes }
    }

    /// The code of `value`. Every value has one: the tests of each table
    /// check it against the enum's every variant.
    pub fn code(&self, value: T) -> u8 {
        self.codes
            .iter()
            .find(|(v, _)| *v == value)
            .map(|&(_, code)| code)
            .unwrap_or_else(|| panic!("{value:?} has no {} code", self.what))
    }

    /// The value stored as `code`; an error naming it when none is.
    pub fn value(&self, code: u8) -> Result<T, String> {
        self.codes
            .iter()
            .find(|&&(_, c)| c == code)
            .map(|&(value, _)| value)
            .ok_or_else(|| format!("{code} is not a {} code", self.what))
    }
}

/// The codes of a cluster's statuses. They are the variant indexes that
/// schema 1 wrote when it stored the domain's enum directly (bincode writes
/// an index below 251 as that one byte), so the bytes of every store already
/// on disk keep their meaning.
pub const STATUS_CODES: CodeTable<ClusterStatus> = CodeTable::new(
    "cluster status",
    &[
        (ClusterStatus::Creating, 0),
        (ClusterStatus::Active, 1),
        (ClusterStatus::Deleting, 2),
        (ClusterStatus::Failed, 3),
        (ClusterStatus::Updating, 4),
        (ClusterStatus::Pending, 5),
    ],
);

/// A cluster's status as stored: one byte of `STATUS_CODES`. Holds only
/// codes of the table: it is made from a status, or decoded through the
/// table, which refuses any other byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub struct StatusCode(u8);

impl StatusCode {
    pub fn of(status: ClusterStatus) -> StatusCode {
        StatusCode(STATUS_CODES.code(status))
    }

    pub fn status(self) -> ClusterStatus {
        STATUS_CODES
            .value(self.0)
            .expect("a StatusCode holds only codes of the table")
    }
}

impl From<StatusCode> for u8 {
    fn from(code: StatusCode) -> u8 {
        code.0
    }
}

impl TryFrom<u8> for StatusCode {
    type Error = String;

    /// Refuses a code no status has: the record then does not decode, and
    /// is reported as damaged.
    fn try_from(code: u8) -> Result<Self, String> {
        STATUS_CODES.value(code).map(|_| StatusCode(code))
    }
}

/// Which kind of answer a client request token saved (`SavedResponse`): the
/// byte written before the saved record. The same bytes as schema 2's
/// variant indexes of the enum, which bincode wrote as one byte.
pub mod saved_response {
    pub const CLUSTER: u8 = 0;
    pub const ASSOCIATION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names every status, so that a new one stops the build here until it
    /// is listed below, where the test asks for its code.
    #[allow(dead_code)]
    fn every_status_is_named(status: ClusterStatus) {
        use ClusterStatus::*;
        match status {
            Creating | Active | Deleting | Failed | Updating | Pending => {}
        }
    }

    /// If this fails, a stored byte changed meaning: every store on disk
    /// would read its clusters with another status. Looked up in another
    /// order than the enum declares its variants, so that a table that
    /// followed the declaration order would not pass by chance.
    #[test]
    fn every_cluster_status_keeps_its_code() {
        use ClusterStatus::*;
        let frozen = [
            (Pending, 5),
            (Active, 1),
            (Failed, 3),
            (Creating, 0),
            (Updating, 4),
            (Deleting, 2),
        ];
        for (status, code) in frozen {
            assert_eq!(u8::from(StatusCode::of(status)), code, "{status:?}");
            assert_eq!(StatusCode::try_from(code).unwrap().status(), status);
        }
        assert_eq!(frozen.len(), ClusterStatus::ALL.len());
    }

    #[test]
    fn every_cluster_status_comes_back_from_its_code_and_no_other_code_decodes() {
        for status in ClusterStatus::ALL {
            let code = u8::from(StatusCode::of(status));
            assert_eq!(StatusCode::try_from(code).unwrap().status(), status);
        }
        for code in 6..=u8::MAX {
            let refused = StatusCode::try_from(code).unwrap_err();
            assert_eq!(refused, format!("{code} is not a cluster status code"));
        }
    }

    /// What the table buys: an enum declared in another order than its
    /// codes (as the domain's would be after someone reordered it) is stored
    /// with the table's codes, not with its declaration indexes, which serde
    /// would write.
    #[test]
    fn a_reordered_enum_keeps_its_stored_bytes_through_its_table() {
        #[derive(Debug, Clone, Copy, PartialEq, Serialize)]
        enum Reordered {
            Pending,
            Updating,
            Active,
        }
        const TABLE: CodeTable<Reordered> = CodeTable::new(
            "reordered",
            &[
                (Reordered::Active, 1),
                (Reordered::Updating, 4),
                (Reordered::Pending, 5),
            ],
        );
        #[derive(Serialize)]
        struct Record {
            name: &'static str,
            status: u8,
        }
        for (value, frozen) in [
            (Reordered::Pending, 5),
            (Reordered::Updating, 4),
            (Reordered::Active, 1),
        ] {
            let stored = encode(&Record {
                name: "c1",
                status: TABLE.code(value),
            });
            assert_eq!(stored, [2, b'c', b'1', frozen], "{value:?}");
            assert_eq!(TABLE.value(frozen), Ok(value));
            // What serde alone would have stored: the declaration index.
            assert_ne!(encode(&value), [frozen], "{value:?}");
        }
    }

    /// If this fails, every saved token would replay another kind of answer
    /// or none: its code is the byte after the fingerprint and expiry.
    #[test]
    fn every_saved_answer_keeps_its_code() {
        use crate::store::records::{
            decode, encode as encode_record, AssociationRecord, ClusterRecord, Record,
            SavedResponse, TokenRecord,
        };

        let cluster = ClusterRecord {
            name: "c1".into(),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            version: "1.31".into(),
            tags: Default::default(),
            created_at: 1_700_000_000_000,
            status: StatusCode::of(ClusterStatus::Active),
            activate_at: None,
            association_count: 0,
            deleting: false,
        };
        let association = AssociationRecord {
            cluster: "c1".into(),
            id: "a-8mvwvh57cu74mgcst".into(),
            namespace: "default".into(),
            service_account: "app".into(),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            tags: Default::default(),
            created_at: 1_700_000_000_000,
            modified_at: 1_700_000_000_000,
            disable_session_tags: false,
            target_role_arn: None,
            external_id: None,
            policy: None,
            create_token: None,
        };
        let token = |response| TokenRecord {
            fingerprint: vec![],
            expires_at: 0,
            response,
        };
        for (response, code) in [
            (SavedResponse::Association(association), 1),
            (SavedResponse::Cluster(cluster), 0),
        ] {
            let token = token(response);
            let bytes = encode_record(&token);
            // Format byte, empty fingerprint, expiry 0, then the code.
            assert_eq!(bytes[..4], [TokenRecord::FORMAT, 0, 0, code]);
            assert_eq!(decode::<TokenRecord>(&bytes).unwrap(), token);
            let mut unknown = bytes;
            unknown[3] = 2;
            let refused = decode::<TokenRecord>(&unknown).unwrap_err().to_string();
            assert!(
                refused.contains("2 is not the code of a saved answer"),
                "{refused}"
            );
        }
    }

    /// bincode's bytes of a value, as the records are written.
    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap()
    }
}
