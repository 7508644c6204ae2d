//! Between the engine's values (`engine::update`, `engine::version_vector`,
//! `engine::session::messages`) and their FrsTransport wire forms. GUIDs
//! are one type on both sides (`engine::ids::Guid`, its wire bytes).

use crate::engine::ids::{Gvsn, Uid};
use crate::engine::session::messages as engine;
use crate::engine::update::Update as EngineUpdate;
use crate::engine::version_vector::{VersionVector as EngineVector, VersionVectorError};

use super::types::{
    StagingPolicy, Update, UpdateRequestType, UpdateStatus, VersionChangeType, VersionRequestType, VersionVector,
};


/// An engine update as `FRS_UPDATE` (§2.2.1.4.4).
pub fn update_to_wire(u: &EngineUpdate) -> Update {
    Update {
        present: u.present,
        name_conflict: u.name_conflict,
        attributes: u.attributes,
        fence: u.fence,
        clock: u.clock,
        create_time: u.create_time,
        content_set_id: u.content_set_id,
        hash: u.hash,
        rdc_similarity: u.rdc_similarity,
        uid_db_guid: u.uid.db,
        uid_version: u.uid.version,
        gvsn_db_guid: u.gvsn.db,
        gvsn_version: u.gvsn.version,
        parent_db_guid: u.parent.db,
        parent_version: u.parent.version,
        name: u.name.clone(),
        flags: u.flags,
    }
}

/// `FRS_UPDATE` as an engine update. Nothing is checked here: the engine
/// validates what it receives (`Update::validate`) and cancels what fails.
pub fn update_from_wire(u: &Update) -> EngineUpdate {
    EngineUpdate {
        present: u.present,
        name_conflict: u.name_conflict,
        attributes: u.attributes,
        fence: u.fence,
        clock: u.clock,
        create_time: u.create_time,
        content_set_id: u.content_set_id,
        hash: u.hash,
        rdc_similarity: u.rdc_similarity,
        uid: Uid::new(u.uid_db_guid, u.uid_version),
        gvsn: Gvsn::new(u.gvsn_db_guid, u.gvsn_version),
        parent: Uid::new(u.parent_db_guid, u.parent_version),
        name: u.name.clone(),
        flags: u.flags,
    }
}

/// A version vector as `FRS_VERSION_VECTOR` entries (§2.2.1.4.1).
pub fn vector_to_wire(v: &EngineVector) -> Vec<VersionVector> {
    v.to_wire()
        .into_iter()
        .map(|(db, low, high)| VersionVector { db_guid: db, low, high })
        .collect()
}

/// `FRS_VERSION_VECTOR` entries as a version vector; `low > high` is an
/// error (the peer's vector is not trusted).
pub fn vector_from_wire(v: &[VersionVector]) -> Result<EngineVector, VersionVectorError> {
    EngineVector::from_wire(v.iter().map(|e| (e.db_guid, e.low, e.high)))
}

/// `UPDATE_REQUEST_TYPE` → engine.
pub fn update_request_from_wire(t: UpdateRequestType) -> engine::UpdateRequestType {
    match t {
        UpdateRequestType::All => engine::UpdateRequestType::All,
        UpdateRequestType::Tombstones => engine::UpdateRequestType::Tombstones,
        UpdateRequestType::Live => engine::UpdateRequestType::Live,
    }
}

/// Engine → `UPDATE_REQUEST_TYPE`.
pub fn update_request_to_wire(t: engine::UpdateRequestType) -> UpdateRequestType {
    match t {
        engine::UpdateRequestType::All => UpdateRequestType::All,
        engine::UpdateRequestType::Tombstones => UpdateRequestType::Tombstones,
        engine::UpdateRequestType::Live => UpdateRequestType::Live,
    }
}

/// `UPDATE_STATUS` → engine.
pub fn update_status_from_wire(s: UpdateStatus) -> engine::UpdateStatus {
    match s {
        UpdateStatus::Done => engine::UpdateStatus::Done,
        UpdateStatus::More => engine::UpdateStatus::More,
    }
}

/// Engine → `UPDATE_STATUS`.
pub fn update_status_to_wire(s: engine::UpdateStatus) -> UpdateStatus {
    match s {
        engine::UpdateStatus::Done => UpdateStatus::Done,
        engine::UpdateStatus::More => UpdateStatus::More,
    }
}

/// `VERSION_REQUEST_TYPE` → engine.
pub fn version_request_from_wire(t: VersionRequestType) -> engine::VersionRequestType {
    match t {
        VersionRequestType::NormalSync => engine::VersionRequestType::Normal,
        VersionRequestType::SlowSync => engine::VersionRequestType::Slow,
        VersionRequestType::SubordinateSync => engine::VersionRequestType::Subordinate,
    }
}

/// Engine → `VERSION_REQUEST_TYPE`.
pub fn version_request_to_wire(t: engine::VersionRequestType) -> VersionRequestType {
    match t {
        engine::VersionRequestType::Normal => VersionRequestType::NormalSync,
        engine::VersionRequestType::Slow => VersionRequestType::SlowSync,
        engine::VersionRequestType::Subordinate => VersionRequestType::SubordinateSync,
    }
}

/// `VERSION_CHANGE_TYPE` → engine.
pub fn change_from_wire(t: VersionChangeType) -> engine::ChangeType {
    match t {
        VersionChangeType::Notify => engine::ChangeType::Notify,
        VersionChangeType::All => engine::ChangeType::All,
    }
}

/// Engine → `VERSION_CHANGE_TYPE`.
pub fn change_to_wire(t: engine::ChangeType) -> VersionChangeType {
    match t {
        engine::ChangeType::Notify => VersionChangeType::Notify,
        engine::ChangeType::All => VersionChangeType::All,
    }
}

/// Engine → `FRS_REQUESTED_STAGING_POLICY`.
pub fn staging_to_wire(p: engine::StagingPolicy) -> StagingPolicy {
    match p {
        engine::StagingPolicy::ServerDefault => StagingPolicy::ServerDefault,
        engine::StagingPolicy::StagingRequired => StagingPolicy::StagingRequired,
        engine::StagingPolicy::RestagingRequired => StagingPolicy::RestagingRequired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ids::Guid;

    #[test]
    fn update_round_trips() {
        let u = EngineUpdate {
            present: true,
            name_conflict: false,
            attributes: 0x20,
            fence: 3,
            clock: 0x01d9_0000_0000_0001,
            create_time: 0x01d8_0000_0000_0000,
            content_set_id: Guid([1; 16]),
            hash: [7; 20],
            rdc_similarity: [0; 16],
            uid: Uid::new(Guid([2; 16]), 12),
            gvsn: Gvsn::new(Guid([3; 16]), 13),
            parent: Uid::new(Guid([1; 16]), 1),
            name: "a file.txt".into(),
            flags: 0,
        };
        let w = update_to_wire(&u);
        assert_eq!((w.uid_db_guid, w.uid_version, w.gvsn_version), (Guid([2; 16]), 12, 13));
        assert_eq!(update_from_wire(&w), u);
    }

    #[test]
    fn vectors_round_trip_and_bad_entries_fail() {
        let mut v = EngineVector::new();
        for i in [9u64, 10, 11, 20] {
            v.insert(Gvsn::new(Guid([4; 16]), i));
        }
        let w = vector_to_wire(&v);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].low, w[0].high), (8, 11));
        assert_eq!(vector_from_wire(&w).unwrap(), v);
        let bad = [VersionVector { db_guid: Guid([4; 16]), low: 9, high: 3 }];
        assert!(vector_from_wire(&bad).is_err());
    }
}
