//! The dispatcher over a real store and staging area, sans sockets: wire
//! requests in, decoded wire answers checked.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::wire::frstrans::protocol_version;
use crate::engine::ids::Uid;
use crate::engine::local_change::{NewFile, Originator};
use crate::engine::update::Update as EUpdate;
use crate::engine::version_vector::VersionVector as EVector;
use crate::wire::frstrans::{
    AsyncPollRequest, CheckConnectivityRequest, ContextRequest, EstablishConnectionRequest, EstablishSessionRequest,
    FileDataRequest, RequestVersionVectorRequest, UpdateRequestType, VersionChangeType, VersionRequestType,
};

const GROUP: Guid = Guid([0x11; 16]);
const FOLDER: Guid = Guid([0x22; 16]);
const CONN: Guid = Guid([0x33; 16]);

struct Fixture {
    dir: PathBuf,
    db: Database,
    updates: Vec<EUpdate>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A store with `files` files (one directory, then files in it), a
/// tombstone, and staged content `content(i)` for each live update.
fn fixture(tag: &str, files: usize) -> Fixture {
    let dir = std::env::temp_dir().join(format!("dfsr-frs-service-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("staging")).unwrap();
    let mut db = Database::open(&dir.join("dfsr.tdb")).unwrap();
    let mut o = Originator::new(Guid([0x44; 16]), FOLDER);
    let mut held: BTreeMap<Uid, EUpdate> = BTreeMap::new();
    let nf = |attributes| NewFile { attributes, create_time: 1, hash: [9; 20] };
    let d = o.create(&held, Uid::root_of(FOLDER), "dir", nf(0x10), 100).unwrap();
    held.insert(d.uid, d.clone());
    for i in 0..files {
        let u = o.create(&held, d.uid, &format!("f{i}"), nf(0x20), 100).unwrap();
        held.insert(u.uid, u);
    }
    let gone = o.create(&held, Uid::root_of(FOLDER), "gone", nf(0x20), 100).unwrap();
    held.insert(gone.uid, gone.clone());
    let gone = o.delete(&held, gone.uid, 200).unwrap();
    held.insert(gone.uid, gone);
    let area = StagingArea::new(dir.join("staging"));
    let mut vv = EVector::new();
    for u in held.values() {
        vv.insert(u.gvsn);
        if u.present {
            std::fs::write(area.path_of(&u.gvsn), content(u.gvsn.version)).unwrap();
        }
    }
    db.transaction(|tx| -> Result<(), crate::store::StoreError> {
        for u in held.values() {
            tx.put_update(u)?;
        }
        tx.set_known_vector(&GROUP, &FOLDER, &vv)
    })
    .unwrap();
    Fixture { dir, db, updates: held.into_values().collect() }
}

fn content(v: u64) -> Vec<u8> {
    (0..(v as usize * 1000)).map(|i| (i as u64 ^ v) as u8).collect()
}

fn service(f: &Fixture) -> FrsService {
    FrsService::new(Some(StagingArea::new(f.dir.join("staging"))))
}

fn call(s: &mut FrsService, db: Option<&Database>, r: Request) -> Response {
    match s.call(db, r.opnum(), &r.to_bytes(), 0) {
        Outcome::Reply(b) => Response::decode(r.opnum(), &b).expect("a decodable answer"),
        other => panic!("{other:?}"),
    }
}

fn connect(s: &mut FrsService, db: Option<&Database>) {
    connect_only(s, db);
    let r = call(
        s,
        db,
        Request::EstablishSession(EstablishSessionRequest { connection_id: CONN, content_set_id: FOLDER }),
    );
    assert_eq!(r.status(), 0);
}

#[test]
fn check_connectivity_and_version_negotiation() {
    let mut s = FrsService::new(None);
    let req = Request::CheckConnectivity(CheckConnectivityRequest::default());
    assert_eq!(call(&mut s, None, req.clone()).status(), 0);
    // The alignment zeros before a verification trailer are tolerated.
    let mut padded = req.to_bytes();
    padded.extend_from_slice(&[0, 0]);
    assert!(matches!(s.call(None, 0, &padded, 0), Outcome::Reply(_)));
    for (v, ok) in [
        (protocol_version::LONGHORN_SERVER, true),
        (protocol_version::WIN8_SERVER, true),
        (protocol_version::WINBLUE_SERVER, true),
        (0x0005_0005, true),
        (0x0005_0001, false),
        (0x0004_0002, false),
        (0x0006_0000, false),
    ] {
        let req = Request::EstablishConnection(EstablishConnectionRequest {
            replica_set_id: Guid::default(),
            connection_id: Guid::default(),
            downstream_protocol_version: v,
            downstream_flags: 0,
        });
        let Response::EstablishConnection(r) = call(&mut s, None, req) else { panic!("wrong type") };
        assert_eq!(r.upstream_protocol_version, OUR_PROTOCOL_VERSION, "{v:#x}");
        assert_eq!(r.upstream_flags, 0);
        assert_eq!(r.status, if ok { 0 } else { frs_error::INCOMPATIBLE_VERSION }, "{v:#x}");
    }
    assert_eq!(s.negotiated_version(), Some(0x0005_0005));
}

#[test]
fn refusals_before_connection_unknown_sets_bad_stubs_and_rdc() {
    let f = fixture("refusals", 2);
    let mut s = service(&f);
    let db = Some(&f.db);
    // No EstablishConnection yet: connection invalid.
    let sess = Request::EstablishSession(EstablishSessionRequest { connection_id: CONN, content_set_id: FOLDER });
    assert_eq!(call(&mut s, db, sess).status(), frs_error::CONNECTION_INVALID);
    connect(&mut s, db);
    // Another connection id, an unknown content set.
    let other = Request::EstablishSession(EstablishSessionRequest { connection_id: Guid([9; 16]), content_set_id: FOLDER });
    assert_eq!(call(&mut s, db, other).status(), frs_error::CONNECTION_INVALID);
    let unknown = Request::EstablishSession(EstablishSessionRequest { connection_id: CONN, content_set_id: Guid([7; 16]) });
    assert_eq!(call(&mut s, db, unknown).status(), frs_error::CONTENTSET_NOT_FOUND);
    // Without a database (it could not be opened) we are offline.
    let mut bare = FrsService::new(None);
    connect_only(&mut bare, None);
    let sess = Request::EstablishSession(EstablishSessionRequest { connection_id: CONN, content_set_id: FOLDER });
    assert_eq!(call(&mut bare, None, sess).status(), frs_error::CSMAN_OFFLINE);
    // Undecodable stubs and the methods we do not serve.
    assert_eq!(s.call(db, 2, &[1, 2, 3], 0), Outcome::Fault(status::BAD_STUB_DATA));
    assert_eq!(s.call(db, 9, &[0; 40], 0), Outcome::Fault(status::NCA_S_OP_RNG_ERROR));
    assert_eq!(s.call(db, 14, &[], 0), Outcome::Fault(status::NCA_S_OP_RNG_ERROR));
    assert_eq!(s.call(db, 99, &[], 0), Outcome::Fault(status::NCA_S_OP_RNG_ERROR));
    // A server context we never handed out.
    let bogus = ContextHandle { attributes: 0, uuid: Guid([5; 16]) };
    let r = call(&mut s, db, Request::RawGetFileData(FileDataRequest { server_context: bogus, buffer_size: 10 }));
    assert_eq!(r.status(), frs_error::INVALID_PARAMETER);
    let r = call(&mut s, db, Request::RdcClose(ContextRequest { server_context: bogus }));
    assert_eq!(r.status(), frs_error::INVALID_PARAMETER);
}

fn connect_only(s: &mut FrsService, db: Option<&Database>) {
    let r = call(
        s,
        db,
        Request::EstablishConnection(EstablishConnectionRequest {
            replica_set_id: GROUP,
            connection_id: CONN,
            downstream_protocol_version: protocol_version::WINBLUE_SERVER,
            downstream_flags: 0,
        }),
    );
    assert_eq!(r.status(), 0);
}

#[test]
fn version_vector_then_pages_of_updates() {
    let mut f = fixture("pages", 25);
    let mut s = service(&f);
    let db = Some(&f.db);
    connect(&mut s, db);
    // CHANGE_ALL: the vector comes through AsyncPoll.
    let rvv = Request::RequestVersionVector(RequestVersionVectorRequest {
        sequence_number: 7,
        connection_id: CONN,
        content_set_id: FOLDER,
        request_type: VersionRequestType::NormalSync,
        change_type: VersionChangeType::All,
        vv_generation: 0,
    });
    assert_eq!(call(&mut s, db, rvv).status(), 0);
    let Response::AsyncPoll(p) = call(&mut s, db, Request::AsyncPoll(AsyncPollRequest { connection_id: CONN })) else {
        panic!()
    };
    assert_eq!((p.status, p.response.sequence_number, p.response.status), (0, 7, 0));
    let vv = vector_from_wire(p.response.result.version_vector.as_deref().expect("a vector")).unwrap();
    assert_eq!(vv.iter().map(|(_, r)| r.len()).sum::<u64>(), f.updates.len() as u64);
    // A NOTIFY at the current generation waits: the AsyncPoll is pending
    // until the generation passes or the poll is replaced.
    let notify = Request::RequestVersionVector(RequestVersionVectorRequest {
        sequence_number: 8,
        connection_id: CONN,
        content_set_id: FOLDER,
        request_type: VersionRequestType::NormalSync,
        change_type: VersionChangeType::Notify,
        vv_generation: p.response.result.vv_generation,
    });
    assert_eq!(call(&mut s, db, notify).status(), 0);
    let poll = Request::AsyncPoll(AsyncPollRequest { connection_id: CONN });
    assert_eq!(s.call(db, 5, &poll.to_bytes(), 0), Outcome::Pending);
    assert_eq!(s.poll_completion(), None);

    // Pages of 10: tombstones first, then live; the union is everything.
    let mut got = Vec::new();
    let mut diff = vv.clone();
    for kind in [UpdateRequestType::All, UpdateRequestType::Tombstones, UpdateRequestType::Live] {
        let mut d = if kind == UpdateRequestType::Live { vv.clone() } else { diff.clone() };
        loop {
            let r = call(
                &mut s,
                db,
                Request::RequestUpdates(RequestUpdatesRequest {
                    connection_id: CONN,
                    content_set_id: FOLDER,
                    credits_available: 10,
                    hash_requested: false,
                    update_request_type: kind,
                    version_vector_diff: vector_to_wire(&d),
                }),
            );
            let Response::RequestUpdates(r) = r else { panic!() };
            assert_eq!(r.status, 0);
            assert!(r.updates.len() <= 10);
            assert_eq!(r.credits_available, 10);
            got.extend(r.updates.iter().map(update_from_wire));
            if r.update_status == UpdateStatus::Done {
                break;
            }
            d.remove_through(&Gvsn::new(r.gvsn_db_guid, r.gvsn_version));
        }
        diff = EVector::new();
    }
    let mut uids: Vec<_> = got.iter().map(|u| u.uid).collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), f.updates.len());
    // Credits above 256 are refused.
    let r = call(
        &mut s,
        db,
        Request::RequestUpdates(RequestUpdatesRequest {
            connection_id: CONN,
            content_set_id: FOLDER,
            credits_available: 256,
            hash_requested: false,
            update_request_type: UpdateRequestType::All,
            version_vector_diff: vec![crate::wire::frstrans::VersionVector { db_guid: Guid([1; 16]), low: 9, high: 3 }],
        }),
    );
    assert_eq!(r.status(), frs_error::INVALID_PARAMETER, "a vector with low > high");

    // The waiting NOTIFY completes once our vector changes (a new local
    // change committed by another process), on the next tick.
    s.on_tick(db, 1);
    assert_eq!(s.poll_completion(), None, "nothing changed yet");
    let mut vv2 = vv.clone();
    vv2.insert(Gvsn::new(Guid([0x44; 16]), 5000));
    f.db.transaction(|tx| tx.set_known_vector(&GROUP, &FOLDER, &vv2)).unwrap();
    s.on_tick(Some(&f.db), 2);
    let done = s.poll_completion().expect("the pending AsyncPoll completes");
    let Ok(Response::AsyncPoll(p2)) = Response::decode(5, &done) else { panic!() };
    assert_eq!((p2.status, p2.response.sequence_number, p2.response.status), (0, 8, 0));
    assert!(p2.response.result.vv_generation > p.response.result.vv_generation);
    assert_eq!(p2.response.result.version_vector, None, "a notification carries no vector (§3.2.4.1.5)");
}

#[test]
fn file_transfer_in_pieces_and_records() {
    let f = fixture("transfer", 3);
    let mut s = service(&f);
    let db = Some(&f.db);
    connect(&mut s, db);
    let file = f.updates.iter().filter(|u| u.present && !u.is_directory()).max_by_key(|u| u.gvsn.version).unwrap();
    let want = content(file.gvsn.version);
    // The client may send only the UID; the server fills in its update.
    let mut asked = WireUpdateOnlyUid::of(file);
    asked.content_set_id = FOLDER;
    let init = |s: &mut FrsService, u, size| {
        let Response::InitializeFileTransferAsync(r) = call(
            s,
            db,
            Request::InitializeFileTransferAsync(Box::new(InitializeFileTransferAsyncRequest {
                connection_id: CONN,
                frs_update: u,
                rdc_desired: false,
                staging_policy: StagingPolicy::ServerDefault,
                buffer_size: size,
            })),
        ) else {
            panic!()
        };
        r
    };
    let r = init(&mut s, asked.clone(), 1000);
    assert_eq!(r.status, 0);
    assert_eq!(update_from_wire(&r.frs_update), *file);
    assert!(!r.is_end_of_file && !r.server_context.is_null());
    assert_eq!(r.rdc_file_info.as_ref().map(|i| i.file_size_estimate), Some(want.len() as u64));
    let mut data = r.data.clone();
    let ctx = r.server_context;
    assert_eq!(s.open_transfers(), 1);
    loop {
        let Response::RawGetFileData(p) =
            call(&mut s, db, Request::RawGetFileData(FileDataRequest { server_context: ctx, buffer_size: 1000 }))
        else {
            panic!()
        };
        assert_eq!((p.status, p.server_context), (0, ctx));
        assert!(p.data.len() <= 1000);
        data.extend_from_slice(&p.data);
        if p.is_end_of_file {
            break;
        }
    }
    assert!(data == want);
    // Reading past the end fails (§3.2.4.1.9), the context stays until closed.
    let Response::RawGetFileData(p) =
        call(&mut s, db, Request::RawGetFileData(FileDataRequest { server_context: ctx, buffer_size: 10 }))
    else {
        panic!()
    };
    assert_eq!(p.status, frs_error::HANDLE_EOF);
    let Response::RdcClose(c) = call(&mut s, db, Request::RdcClose(ContextRequest { server_context: ctx })) else { panic!() };
    assert_eq!((c.status, c.server_context.is_null()), (0, true));
    assert_eq!(s.open_transfers(), 0);
    // It all fits: still a context, for the client's RdcClose (§3.3.1.4).
    let r = init(&mut s, asked.clone(), 262_144);
    assert!(r.is_end_of_file && !r.server_context.is_null() && r.data == want);
    assert_eq!(s.open_transfers(), 1);
    call(&mut s, db, Request::RdcClose(ContextRequest { server_context: r.server_context }));
    assert_eq!(s.open_transfers(), 0);
    // A tombstone and an unknown UID: file not found.
    let tomb = f.updates.iter().find(|u| !u.present).unwrap();
    assert_eq!(init(&mut s, WireUpdateOnlyUid::of(tomb), 100).status, frs_error::FILE_NOT_FOUND);
    let mut unknown = asked.clone();
    unknown.uid_version = 999_999;
    assert_eq!(init(&mut s, unknown, 100).status, frs_error::FILE_NOT_FOUND);
    // Staged content missing: file not found, named in the log.
    std::fs::remove_file(StagingArea::new(f.dir.join("staging")).path_of(&file.gvsn)).unwrap();
    assert_eq!(init(&mut s, asked, 100).status, frs_error::FILE_NOT_FOUND);

    // RequestRecords: live (UID, GVSN) pairs in UID order, compressed.
    let mut pairs = Vec::new();
    let mut cursor = (Guid::default(), 0u64);
    loop {
        let Response::RequestRecords(r) = call(
            &mut s,
            db,
            Request::RequestRecords(RequestRecordsRequest {
                connection_id: CONN,
                content_set_id: FOLDER,
                uid_db_guid: cursor.0,
                uid_version: cursor.1,
                max_records: 2,
            }),
        ) else {
            panic!()
        };
        assert_eq!(r.status, 0);
        let n = r.num_records as usize;
        if n > 0 {
            let raw = xpress::decompress(r.compressed_records.as_deref().unwrap(), n * ID_GVSN_SIZE).unwrap();
            for c in raw.chunks(ID_GVSN_SIZE) {
                let uid = Uid::new(Guid(c[..16].try_into().unwrap()), u64::from_le_bytes(c[16..24].try_into().unwrap()));
                let gvsn = Gvsn::new(Guid(c[24..40].try_into().unwrap()), u64::from_le_bytes(c[40..48].try_into().unwrap()));
                pairs.push((uid, gvsn));
                cursor = (uid.db, uid.version);
            }
        }
        if r.records_status == RecordsStatus::Done {
            break;
        }
    }
    let mut want: Vec<_> = f.updates.iter().filter(|u| u.present).map(|u| (u.uid, u.gvsn)).collect();
    want.sort();
    assert_eq!(pairs, want);
}

/// An FRS_UPDATE carrying only what a client must send: the UID.
struct WireUpdateOnlyUid;

impl WireUpdateOnlyUid {
    fn of(u: &EUpdate) -> crate::wire::frstrans::Update {
        crate::wire::frstrans::Update {
            uid_db_guid: u.uid.db,
            uid_version: u.uid.version,
            content_set_id: u.content_set_id,
            ..Default::default()
        }
    }
}

#[test]
fn allow_list_and_refused_peers() {
    let open = AllowList::parse("");
    assert!(open.is_open() && open.allows(None) && open.allows(Some("X\\y")));
    let l = AllowList::parse("DFSRTEST\\fs1$, dc2$ ");
    assert!(!l.is_open());
    assert!(l.allows(Some("dfsrtest\\FS1$")));
    assert!(l.allows(Some("OTHER\\DC2$")), "an entry without a domain matches any");
    assert!(l.allows(Some("dc2$")));
    assert!(!l.allows(Some("OTHER\\fs1$")), "the domain must match when given");
    assert!(!l.allows(Some("DFSRTEST\\fs1")));
    assert!(!l.allows(None));
    // A refused peer gets CONNECTION_INVALID and so no session.
    let mut s = FrsService::new(None);
    s.set_peer_allowed(false);
    let r = call(
        &mut s,
        None,
        Request::EstablishConnection(EstablishConnectionRequest {
            replica_set_id: GROUP,
            connection_id: CONN,
            downstream_protocol_version: protocol_version::WINBLUE_SERVER,
            downstream_flags: 0,
        }),
    );
    assert_eq!(r.status(), frs_error::CONNECTION_INVALID);
    let sess = Request::EstablishSession(EstablishSessionRequest { connection_id: CONN, content_set_id: FOLDER });
    assert_eq!(call(&mut s, None, sess).status(), frs_error::CONNECTION_INVALID);
}

/// Through the RPC server's seam: the caller's account is checked against
/// `dfsr:rpc allow` at the call, and the answer is the dispatcher's.
#[test]
fn rpc_service_admits_callers_by_the_allow_list() {
    use crate::net::rpc_service::{Call, Caller, Outcome as Answer, RpcService};
    use crate::wire::dcerpc::{AuthLevel, AuthType};
    let dir = std::env::temp_dir().join(format!("dfsr-serve-allow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("replication.tdb");
    let mut shared = ServedState {
        allow: AllowList::parse("DFSRTEST\\fs1$"),
        config: Some(crate::store::config_store::ConfigStore::open(&config_path).unwrap()),
        member: "UP".into(),
        ..Default::default()
    };
    let establish = Request::EstablishConnection(EstablishConnectionRequest {
        replica_set_id: GROUP,
        connection_id: CONN,
        downstream_protocol_version: protocol_version::WINBLUE_SERVER,
        downstream_flags: 0,
    })
    .to_bytes();
    let status_for = |user: &str| {
        let caller = Caller {
            peer: "192.0.2.1:49152".parse().unwrap(),
            auth_type: AuthType::SPNEGO,
            auth_level: AuthLevel::PRIVACY,
            user: Some(user.into()),
        };
        let mut s = FrsService::open(&shared);
        let call = Call { opnum: 1, stub: &establish, caller: &caller, now: 0 };
        match s.answer(&shared, &call) {
            Answer::Reply(b) => Response::decode(1, &b).expect("a decodable answer").status(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(status_for("DFSRTEST\\fs1$"), frs_error::SUCCESS);
    assert_eq!(status_for("DFSRTEST\\intruder"), frs_error::CONNECTION_INVALID);
    // Once a configuration exists, only its connections from us are
    // served: CONN from UP to DOWN, disabled then enabled.
    {
        use crate::config::replication::Address;
        let store = shared.config.as_mut().unwrap();
        store
            .update(|c| {
                c.add_group("G", GROUP)?;
                c.add_member("G", "UP", Address::parse("up").unwrap(), Guid([0x51; 16]))?;
                c.add_member("G", "DOWN", Address::parse("down").unwrap(), Guid([0x52; 16]))?;
                c.add_connection("G", "UP", "DOWN", false, CONN).map(|_| ())
            })
            .unwrap();
    }
    let status_for = |shared: &ServedState| {
        let caller = Caller {
            peer: "192.0.2.1:49152".parse().unwrap(),
            auth_type: AuthType::SPNEGO,
            auth_level: AuthLevel::PRIVACY,
            user: Some("DFSRTEST\\fs1$".into()),
        };
        let mut s = FrsService::open(shared);
        let call = Call { opnum: 1, stub: &establish, caller: &caller, now: 0 };
        match s.answer(shared, &call) {
            Answer::Reply(b) => Response::decode(1, &b).expect("a decodable answer").status(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(status_for(&shared), frs_error::CONNECTION_INVALID, "a disabled connection was served");
    shared.config.as_mut().unwrap().update(|c| c.set_connection_enabled("G", "UP", "DOWN", true)).unwrap();
    assert_eq!(status_for(&shared), frs_error::SUCCESS);
    shared.member = "DOWN".into();
    assert_eq!(status_for(&shared), frs_error::CONNECTION_INVALID, "a connection from another member was served");
    let _ = std::fs::remove_dir_all(&dir);
}
