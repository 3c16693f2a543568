//! Code tables: the byte each stored enum value is written as.
//!
//! A code is chosen once, written out here by hand, and never changes or is
//! reused; it does not follow the order, the names or the serde attributes of
//! the domain's enum. A new domain variant gets the next free code here (the
//! match below does not compile until it has one).

use serde::{Deserialize, Serialize};

use crate::domain::ClusterStatus;

/// A cluster's status as stored: one byte. Its codes are the variant
/// indexes that schema 1 wrote when it stored the domain's enum directly
/// (bincode writes an index below 251 as that one byte), so the bytes of
/// every store already on disk keep their meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub struct StatusCode(u8);

impl StatusCode {
    pub const CREATING: StatusCode = StatusCode(0);
    pub const ACTIVE: StatusCode = StatusCode(1);
    pub const DELETING: StatusCode = StatusCode(2);
    pub const FAILED: StatusCode = StatusCode(3);
    pub const UPDATING: StatusCode = StatusCode(4);
    pub const PENDING: StatusCode = StatusCode(5);

    pub fn of(status: ClusterStatus) -> StatusCode {
        match status {
            ClusterStatus::Creating => StatusCode::CREATING,
            ClusterStatus::Active => StatusCode::ACTIVE,
            ClusterStatus::Deleting => StatusCode::DELETING,
            ClusterStatus::Failed => StatusCode::FAILED,
            ClusterStatus::Updating => StatusCode::UPDATING,
            ClusterStatus::Pending => StatusCode::PENDING,
        }
    }

    pub fn status(self) -> ClusterStatus {
        match self {
            StatusCode::CREATING => ClusterStatus::Creating,
            StatusCode::ACTIVE => ClusterStatus::Active,
            StatusCode::DELETING => ClusterStatus::Deleting,
            StatusCode::FAILED => ClusterStatus::Failed,
            StatusCode::UPDATING => ClusterStatus::Updating,
            StatusCode::PENDING => ClusterStatus::Pending,
            // `try_from` lets no other code in.
            StatusCode(code) => unreachable!("cluster status code {code} was decoded"),
        }
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
        if code <= StatusCode::PENDING.0 {
            Ok(StatusCode(code))
        } else {
            Err(format!("{code} is not a cluster status code"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// If this fails, a stored byte changed meaning: every store on disk
    /// would read its clusters with another status.
    #[test]
    fn every_cluster_status_keeps_its_code() {
        let codes: Vec<(ClusterStatus, u8)> = ClusterStatus::ALL
            .into_iter()
            .map(|status| (status, StatusCode::of(status).into()))
            .collect();
        assert_eq!(
            codes,
            [
                (ClusterStatus::Creating, 0),
                (ClusterStatus::Active, 1),
                (ClusterStatus::Deleting, 2),
                (ClusterStatus::Failed, 3),
                (ClusterStatus::Updating, 4),
                (ClusterStatus::Pending, 5),
            ]
        );
    }

    #[test]
    fn every_cluster_status_comes_back_from_its_code_and_no_other_code_decodes() {
        for status in ClusterStatus::ALL {
            let code = u8::from(StatusCode::of(status));
            assert_eq!(StatusCode::try_from(code).unwrap().status(), status);
        }
        for code in 6..=u8::MAX {
            assert!(StatusCode::try_from(code).is_err(), "code {code}");
        }
    }
}
