//! The store's disk format: a one-byte format version followed by the
//! record encoded with bincode 2 (standard config: little-endian,
//! variable-length integers).
//!
//! The store owns these bytes. A record is a struct of this module with
//! plain fields (strings, integers, byte strings, maps of strings), converted
//! to and from the domain's types by hand, and every stored enum goes through
//! a code table written out here (`codes`), which the build checks
//! (`plain`); request fingerprints have their
//! own encoding (`fingerprint`). So renaming or reordering anything in the
//! domain cannot change a stored byte, and `golden` pins every byte.
//!
//! A record format, once released, is frozen: a change adds a new format
//! (and a migration step), and the old one moves to its own module (`v1`).

mod codes;
mod current;
pub mod fingerprint;
#[cfg(test)]
mod plain;
pub mod v1;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::domain::Timestamp;

pub use codes::StatusCode;
pub use current::{AssociationRecord, ClusterRecord, IndexRecord, SavedResponse, TokenRecord};

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// The most bytes one record may decode into. Far above any real record
/// (the largest, a token saving an association with 50 tags of 4-byte
/// characters and a full policy, is under 100 KiB), and what a damaged
/// length prefix can make the decoder allocate: without a limit bincode
/// allocates whatever length the bytes claim, and a claim of exabytes
/// aborts the process.
const MAX_DECODED_BYTES: usize = 4 << 20;

fn decoding_config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_DECODED_BYTES>,
> {
    bincode_config().with_limit::<MAX_DECODED_BYTES>()
}

/// A stored value type and the format version it is written with.
pub trait Record: Serialize + DeserializeOwned {
    const FORMAT: u8;
    const WHAT: &'static str;
}

pub fn encode<T: Record>(record: &T) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(128);
    bytes.push(T::FORMAT);
    bincode::serde::encode_into_std_write(record, &mut bytes, bincode_config())
        .expect("encoding into a Vec cannot fail");
    bytes
}

pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, StoreError> {
    let body = body::<T>(bytes)?;
    let (record, read) = bincode::serde::decode_from_slice(body, decoding_config())
        .map_err(|e| StoreError::Corrupt(format!("{} record does not decode: {e}", T::WHAT)))?;
    if read != body.len() {
        return Err(StoreError::Corrupt(format!(
            "{} record has {} trailing bytes",
            T::WHAT,
            body.len() - read
        )));
    }
    Ok(record)
}

/// A stored `T` without its format byte, once that byte is checked.
fn body<T: Record>(bytes: &[u8]) -> Result<&[u8], StoreError> {
    match bytes.split_first() {
        Some((&format, body)) if format == T::FORMAT => Ok(body),
        Some((format, _)) => Err(StoreError::Corrupt(format!(
            "{} record has format version {format}, but this schema stores version {}",
            T::WHAT,
            T::FORMAT
        ))),
        None => Err(StoreError::Corrupt(format!("{} record is empty", T::WHAT))),
    }
}

/// When a stored `TokenRecord` expires. The sweep reads it from every token,
/// so it decodes only the fields before it, borrowing the fingerprint,
/// rather than the whole record with its saved answer.
pub fn token_expires_at(bytes: &[u8]) -> Result<Timestamp, StoreError> {
    /// The leading fields of `TokenRecord`, in its order.
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        _fingerprint: &'a [u8],
        expires_at: i64,
    }
    let (head, _): (Head<'_>, usize) =
        bincode::serde::borrow_decode_from_slice(body::<TokenRecord>(bytes)?, decoding_config())
            .map_err(|e| StoreError::Corrupt(format!("token record does not decode: {e}")))?;
    Ok(Timestamp::from_millis(head.expires_at))
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// An association record with every member set, written as plain
    /// values (also frozen in `golden`, as `association.2 literal`).
    pub(in crate::store) fn association_v2() -> AssociationRecord {
        AssociationRecord {
            cluster: "c1".into(),
            id: "a-8mvwvh57cu74mgcst".into(),
            namespace: "default".into(),
            service_account: "app".into(),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            tags: BTreeMap::from([("k".to_string(), "v".to_string())]),
            created_at: 1_700_000_000_000,
            modified_at: 1_700_000_000_001,
            disable_session_tags: true,
            target_role_arn: Some("arn:aws:iam::111122223333:role/t".into()),
            external_id: Some("e".into()),
            policy: Some("{}".into()),
            create_token: Some(b"key".to_vec()),
        }
    }

    #[test]
    fn records_round_trip_through_the_envelope() {
        let record = association_v2();
        let bytes = encode(&record);
        assert_eq!(bytes[0], AssociationRecord::FORMAT);
        assert_eq!(decode::<AssociationRecord>(&bytes).unwrap(), record);
    }

    #[test]
    fn a_record_of_another_format_or_with_trailing_garbage_is_reported_as_corruption() {
        let mut older = encode(&association_v2());
        older[0] = 1;
        assert!(matches!(
            decode::<AssociationRecord>(&older),
            Err(StoreError::Corrupt(_))
        ));
        let mut bytes = encode(&association_v2());
        bytes.push(0);
        assert!(matches!(
            decode::<AssociationRecord>(&bytes),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<AssociationRecord>(&[]),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn the_sweep_reads_a_tokens_expiry_without_decoding_its_answer() {
        let record = TokenRecord {
            fingerprint: b"{\"roleArn\":\"r\"}".to_vec(),
            expires_at: 1_700_000_123_456,
            response: SavedResponse::Association(association_v2()),
        };
        let bytes = encode(&record);
        let expires_at = Timestamp::from_millis(record.expires_at);
        assert_eq!(token_expires_at(&bytes).unwrap(), expires_at);
        // The saved answer is not read: cut short, the record no longer
        // decodes, but its expiry still does.
        let cut = &bytes[..bytes.len() - 10];
        assert!(decode::<TokenRecord>(cut).is_err());
        assert_eq!(token_expires_at(cut).unwrap(), expires_at);
        let mut older_format = bytes.clone();
        older_format[0] = 1;
        assert!(matches!(
            token_expires_at(&older_format),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            token_expires_at(&bytes[..3]),
            Err(StoreError::Corrupt(_))
        ));
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![".{0,24}", "[a-z0-9-]{1,12}"]
    }

    fn tags() -> impl Strategy<Value = BTreeMap<String, String>> {
        prop::collection::btree_map(text(), text(), 0..4)
    }

    fn cluster() -> impl Strategy<Value = ClusterRecord> {
        (
            (text(), text(), text(), tags()),
            (
                any::<i64>(),
                0u8..6,
                any::<Option<i64>>(),
                any::<u64>(),
                any::<bool>(),
            ),
        )
            .prop_map(
                |(
                    (name, role_arn, version, tags),
                    (created_at, status, activate_at, count, deleting),
                )| {
                    ClusterRecord {
                        name,
                        role_arn,
                        version,
                        tags,
                        created_at,
                        status: StatusCode::try_from(status).unwrap(),
                        activate_at,
                        association_count: count,
                        deleting,
                    }
                },
            )
    }

    fn association() -> impl Strategy<Value = AssociationRecord> {
        (
            (text(), text(), text(), text(), text(), tags()),
            (any::<i64>(), any::<i64>(), any::<bool>()),
            (
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::option::of(prop::collection::vec(any::<u8>(), 0..40)),
            ),
        )
            .prop_map(
                |(
                    (cluster, id, namespace, service_account, role_arn, tags),
                    (created_at, modified_at, disable_session_tags),
                    (target_role_arn, external_id, policy, create_token),
                )| AssociationRecord {
                    cluster,
                    id,
                    namespace,
                    service_account,
                    role_arn,
                    tags,
                    created_at,
                    modified_at,
                    disable_session_tags,
                    target_role_arn,
                    external_id,
                    policy,
                    create_token,
                },
            )
    }

    fn token() -> impl Strategy<Value = TokenRecord> {
        let response = prop_oneof![
            cluster().prop_map(SavedResponse::Cluster),
            association().prop_map(SavedResponse::Association),
        ];
        (
            prop::collection::vec(any::<u8>(), 0..64),
            any::<i64>(),
            response,
        )
            .prop_map(|(fingerprint, expires_at, response)| TokenRecord {
                fingerprint,
                expires_at,
                response,
            })
    }

    #[test]
    fn every_record_decodes_as_it_was_encoded() {
        let records = (cluster(), association(), text(), token());
        crate::props::check("record round trip", 256, records, |(c, a, id, t)| {
            prop_assert_eq!(decode::<ClusterRecord>(&encode(&c)).unwrap(), c);
            prop_assert_eq!(decode::<AssociationRecord>(&encode(&a)).unwrap(), a);
            let index = IndexRecord { id };
            prop_assert_eq!(decode::<IndexRecord>(&encode(&index)).unwrap(), index);
            let bytes = encode(&t);
            prop_assert_eq!(token_expires_at(&bytes).unwrap().as_millis(), t.expires_at);
            prop_assert_eq!(decode::<TokenRecord>(&bytes).unwrap(), t);
            Ok(())
        });
    }

    /// Damaged bytes are refused as corrupt, never a panic: arbitrary bytes,
    /// and real records cut short or with a byte changed.
    #[test]
    fn any_bytes_decode_or_are_refused_as_corrupt() {
        let damaged = (
            token(),
            any::<prop::sample::Index>(),
            any::<u8>(),
            any::<bool>(),
        )
            .prop_map(|(t, at, byte, cut)| {
                let mut bytes = encode(&t);
                let at = at.index(bytes.len());
                if cut {
                    bytes.truncate(at);
                } else {
                    bytes[at] = byte;
                }
                bytes
            });
        let bytes = prop_oneof![prop::collection::vec(any::<u8>(), 0..256), damaged];
        crate::props::check("record decoding", 512, bytes, |bytes: Vec<u8>| {
            let _ = decode::<ClusterRecord>(&bytes);
            let _ = decode::<AssociationRecord>(&bytes);
            let _ = decode::<IndexRecord>(&bytes);
            let _ = decode::<TokenRecord>(&bytes);
            let _ = token_expires_at(&bytes);
            let _ = decode::<v1::AssociationRecord>(&bytes);
            Ok(())
        });
    }
}
