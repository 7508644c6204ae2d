//! Round trips of every message, byte layouts, and malformed input.

use super::*;
use crate::wire::ndr::{Reader, Writer};

fn g(n: u8) -> Guid {
    Guid(std::array::from_fn(|i| n.wrapping_mul(16).wrapping_add(i as u8)))
}

fn ctx(n: u8) -> ContextHandle {
    ContextHandle { attributes: 0, uuid: g(n) }
}

fn update(name: &str) -> Update {
    Update {
        present: true,
        name_conflict: false,
        attributes: 0x20,
        fence: 0x0000_0001_0000_0002,
        clock: 0x01d9_0000_1234_5678,
        create_time: 0x01d8_ffff_0000_0001,
        content_set_id: g(1),
        hash: std::array::from_fn(|i| i as u8 + 1),
        rdc_similarity: std::array::from_fn(|i| 0xf0 + i as u8),
        uid_db_guid: g(2),
        uid_version: 9,
        gvsn_db_guid: g(3),
        gvsn_version: 0x1_0000_0000,
        parent_db_guid: g(1),
        parent_version: 1,
        name: name.to_string(),
        flags: FRS_UPDATE_FLAG_CLOCK_DECREMENTED,
    }
}

fn rdc_info() -> RdcFileInfo {
    RdcFileInfo {
        on_disk_file_size: 123_456,
        file_size_estimate: 200_000,
        rdc_version: CONFIG_RDC_VERSION,
        rdc_minimum_compatible_version: CONFIG_RDC_VERSION_COMPATIBLE,
        compression_algorithm: RdcFileCompressionType::Xpress,
        rdc_filter_parameters: vec![
            RdcParameters::FilterMax(RdcParametersFilterMax { horizon_size: 1024, window_size: 48 }),
            RdcParameters::Generic(RdcParametersGeneric { chunker_type: 7, chunker_parameters: [0xab; 64] }),
            RdcParameters::FilterPoint(RdcParametersFilterPoint { min_chunk_size: 3, max_chunk_size: 9 }),
        ],
    }
}

fn requests() -> Vec<Request> {
    vec![
        Request::CheckConnectivity(CheckConnectivityRequest { replica_set_id: g(1), connection_id: g(2) }),
        Request::EstablishConnection(EstablishConnectionRequest {
            replica_set_id: g(1),
            connection_id: g(2),
            downstream_protocol_version: protocol_version::WINBLUE_SERVER,
            downstream_flags: TRANSPORT_SUPPORTS_RDC_SIMILARITY,
        }),
        Request::EstablishSession(EstablishSessionRequest { connection_id: g(2), content_set_id: g(3) }),
        Request::RequestUpdates(RequestUpdatesRequest {
            connection_id: g(2),
            content_set_id: g(3),
            credits_available: 256,
            hash_requested: true,
            update_request_type: UpdateRequestType::Tombstones,
            version_vector_diff: vec![
                VersionVector { db_guid: g(4), low: 8, high: 100 },
                VersionVector { db_guid: g(5), low: 0, high: u64::MAX },
            ],
        }),
        Request::RequestUpdates(RequestUpdatesRequest {
            connection_id: g(2),
            content_set_id: g(3),
            credits_available: 0,
            hash_requested: false,
            update_request_type: UpdateRequestType::All,
            version_vector_diff: vec![],
        }),
        Request::RequestVersionVector(RequestVersionVectorRequest {
            sequence_number: 77,
            connection_id: g(2),
            content_set_id: g(3),
            request_type: VersionRequestType::SlowSync,
            change_type: VersionChangeType::All,
            vv_generation: 0x0102_0304_0506_0708,
        }),
        Request::AsyncPoll(AsyncPollRequest { connection_id: g(2) }),
        Request::RequestRecords(RequestRecordsRequest {
            connection_id: g(2),
            content_set_id: g(3),
            uid_db_guid: g(4),
            uid_version: 42,
            max_records: 1000,
        }),
        Request::UpdateCancel(Box::new(UpdateCancelRequest {
            connection_id: g(2),
            cancel_data: UpdateCancelData {
                blocking_update: update("blocker.txt"),
                content_set_id: g(3),
                gvsn_database_id: g(4),
                uid_database_id: g(5),
                parent_database_id: g(6),
                gvsn_version: 10,
                uid_version: 11,
                parent_version: 12,
                cancel_type: 1,
                is_uid_valid: true,
                is_parent_uid_valid: false,
                is_blocker_valid: true,
            },
        })),
        Request::RawGetFileData(RawGetFileDataRequest { server_context: ctx(7), buffer_size: 262_144 }),
        Request::RdcGetSignatures(RdcGetSignaturesRequest {
            server_context: ctx(7),
            level: 2,
            offset: 4096,
            length: 65536,
        }),
        Request::RdcPushSourceNeeds(RdcPushSourceNeedsRequest {
            server_context: ctx(7),
            source_needs: vec![
                RdcSourceNeed { need_offset: 0, need_size: 100 },
                RdcSourceNeed { need_offset: 500, need_size: 7 },
            ],
        }),
        Request::RdcGetFileData(RdcGetFileDataRequest { server_context: ctx(7), buffer_size: 8192 }),
        Request::RdcClose(ContextRequest { server_context: ctx(7) }),
        Request::InitializeFileTransferAsync(Box::new(InitializeFileTransferAsyncRequest {
            connection_id: g(2),
            frs_update: update("dir\u{e9}\u{1f600}.txt"),
            rdc_desired: true,
            staging_policy: StagingPolicy::RestagingRequired,
            buffer_size: 65536,
        })),
        Request::Opnum14NotUsedOnWire(Opnum14NotUsedOnWireRequest),
        Request::RawGetFileDataAsync(ContextRequest { server_context: ctx(8) }),
        Request::RdcGetFileDataAsync(ContextRequest { server_context: ctx(9) }),
        Request::RdcFileDataTransferKeepAlive(ContextRequest { server_context: ctx(10) }),
    ]
}

fn responses() -> Vec<Response> {
    vec![
        Response::CheckConnectivity(StatusResponse { status: 0 }),
        Response::EstablishConnection(EstablishConnectionResponse {
            upstream_protocol_version: protocol_version::LONGHORN_SERVER,
            upstream_flags: 1,
            status: 0,
        }),
        Response::EstablishSession(StatusResponse { status: 0x2375 }),
        Response::RequestUpdates(RequestUpdatesResponse {
            credits_available: 4,
            updates: vec![update("a"), update(""), update(&"x".repeat(260))],
            update_status: UpdateStatus::More,
            gvsn_db_guid: g(3),
            gvsn_version: 77,
            status: 0,
        }),
        Response::RequestUpdates(RequestUpdatesResponse {
            credits_available: 0,
            updates: vec![],
            update_status: UpdateStatus::Done,
            gvsn_db_guid: Guid::NIL,
            gvsn_version: 0,
            status: 0,
        }),
        Response::RequestVersionVector(StatusResponse { status: 0 }),
        Response::AsyncPoll(AsyncPollResponse {
            response: AsyncResponseContext {
                sequence_number: 77,
                status: 0,
                result: AsyncVersionVectorResponse {
                    vv_generation: 5,
                    version_vector: Some(vec![VersionVector { db_guid: g(4), low: 0, high: 99 }]),
                    epoque_vector: Some(vec![EpoqueVector {
                        machine: g(6),
                        epoque: SystemTime {
                            year: 2024,
                            month: 2,
                            day_of_week: 4,
                            day: 29,
                            hour: 23,
                            minute: 59,
                            second: 58,
                            milliseconds: 999,
                        },
                    }]),
                },
            },
            status: 0,
        }),
        Response::AsyncPoll(AsyncPollResponse {
            response: AsyncResponseContext {
                sequence_number: 1,
                status: 5,
                result: AsyncVersionVectorResponse { vv_generation: 0, version_vector: None, epoque_vector: None },
            },
            status: 0,
        }),
        Response::RequestRecords(RequestRecordsResponse {
            max_records: 1000,
            num_records: 3,
            compressed_records: Some(vec![1, 2, 3, 4, 5]),
            records_status: RecordsStatus::More,
            status: 0,
        }),
        Response::RequestRecords(RequestRecordsResponse {
            max_records: 0,
            num_records: 0,
            compressed_records: None,
            records_status: RecordsStatus::Done,
            status: 0,
        }),
        Response::UpdateCancel(StatusResponse { status: 0 }),
        Response::RawGetFileData(RawGetFileDataResponse {
            server_context: ctx(7),
            buffer_size: 16,
            data: b"FRSX...".to_vec(),
            is_end_of_file: true,
            status: 0,
        }),
        Response::RdcGetSignatures(RdcGetSignaturesResponse { length: 10, buffer: vec![9; 10], status: 0 }),
        Response::RdcPushSourceNeeds(StatusResponse { status: 0 }),
        Response::RdcGetFileData(RdcGetFileDataResponse { buffer_size: 8192, data: vec![1, 2, 3], status: 0 }),
        Response::RdcClose(RdcCloseResponse { server_context: ContextHandle::default(), status: 0 }),
        Response::InitializeFileTransferAsync(Box::new(InitializeFileTransferAsyncResponse {
            frs_update: update("f"),
            staging_policy: StagingPolicy::ServerDefault,
            server_context: ctx(7),
            rdc_file_info: Some(rdc_info()),
            buffer_size: 32,
            data: vec![0x46, 0x52, 0x53, 0x58, 1],
            is_end_of_file: false,
            status: 0,
        })),
        Response::InitializeFileTransferAsync(Box::new(InitializeFileTransferAsyncResponse {
            frs_update: update("whole"),
            staging_policy: StagingPolicy::StagingRequired,
            server_context: ContextHandle::default(),
            rdc_file_info: None,
            buffer_size: 0,
            data: vec![],
            is_end_of_file: true,
            status: 0,
        })),
        Response::Opnum14NotUsedOnWire(StatusResponse { status: 1 }),
        Response::RawGetFileDataAsync(BytePipeResponse { chunks: vec![vec![1, 2, 3], vec![4; 9]], status: 0 }),
        Response::RdcGetFileDataAsync(BytePipeResponse { chunks: vec![], status: 0x2343 }),
        Response::RdcFileDataTransferKeepAlive(StatusResponse { status: 0 }),
    ]
}

#[test]
fn samples_cover_every_opnum_both_ways() {
    let mut seen_in: Vec<u16> = requests().iter().map(Request::opnum).collect();
    let mut seen_out: Vec<u16> = responses().iter().map(Response::opnum).collect();
    seen_in.dedup();
    seen_out.dedup();
    assert_eq!(seen_in, (0..=17).collect::<Vec<_>>());
    assert_eq!(seen_out, (0..=17).collect::<Vec<_>>());
}

#[test]
fn every_request_round_trips() {
    for req in requests() {
        let bytes = req.to_bytes();
        let back = Request::decode(req.opnum(), &bytes).unwrap_or_else(|e| panic!("{}: {e}", req.method_name()));
        assert_eq!(back, req);
        assert_eq!(back.to_bytes(), bytes, "{}", req.method_name());
        // Strict readers accept what we write (padding is zero).
        if req.opnum() != opnum::OPNUM14_NOT_USED_ON_WIRE {
            assert!(!bytes.is_empty());
        }
    }
}

#[test]
fn every_response_round_trips_and_ends_with_status() {
    for resp in responses() {
        let bytes = resp.to_bytes();
        let back = Response::decode(resp.opnum(), &bytes).unwrap_or_else(|e| panic!("{}: {e}", resp.method_name()));
        assert_eq!(back, resp);
        assert_eq!(back.to_bytes(), bytes);
        let n = bytes.len();
        assert_eq!(n % 4, 0, "{}: status is the last aligned DWORD", resp.method_name());
        assert_eq!(u32::from_le_bytes(bytes[n - 4..].try_into().unwrap()), resp.status(), "{}", resp.method_name());
    }
}

#[test]
fn encoders_write_zero_padding() {
    // Decode everything with a strict reader: non-zero padding would fail.
    fn strict<T: NdrCodec>(bytes: &[u8]) -> T {
        let mut r = Reader::strict(bytes);
        let v = T::read(&mut r).unwrap();
        r.expect_end().unwrap();
        v
    }
    for resp in responses() {
        if let Response::InitializeFileTransferAsync(m) = &resp {
            let mut b = Vec::new();
            m.encode(&mut b);
            assert_eq!(&strict::<InitializeFileTransferAsyncResponse>(&b), &**m);
        }
        if let Response::AsyncPoll(m) = &resp {
            let mut b = Vec::new();
            m.encode(&mut b);
            assert_eq!(&strict::<AsyncPollResponse>(&b), m);
        }
    }
}

#[test]
fn every_prefix_is_truncated_and_a_trailing_byte_is_rejected() {
    let reqs = requests().into_iter().map(|r| (r.opnum(), r.to_bytes(), true));
    let resps = responses().into_iter().map(|r| (r.opnum(), r.to_bytes(), false));
    for (op, bytes, is_req) in reqs.chain(resps) {
        let dec =
            |b: &[u8]| if is_req { Request::decode(op, b).map(|_| ()) } else { Response::decode(op, b).map(|_| ()) };
        for cut in 0..bytes.len() {
            match dec(&bytes[..cut]) {
                Err(Error::Truncated { .. }) | Err(Error::CountTooLarge { .. }) => {}
                other => panic!("opnum {op} in={is_req} cut {cut}: {other:?}"),
            }
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(dec(&long), Err(Error::TrailingBytes(1)), "opnum {op}");
    }
}

#[test]
fn single_byte_corruptions_never_panic_and_reencode_stably() {
    let reqs = requests().into_iter().map(|r| (r.opnum(), r.to_bytes(), true));
    let resps = responses().into_iter().map(|r| (r.opnum(), r.to_bytes(), false));
    for (op, bytes, is_req) in reqs.chain(resps) {
        for i in 0..bytes.len() {
            for v in [0x00, 0x01, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] = v;
                if is_req {
                    if let Ok(m) = Request::decode(op, &b) {
                        assert_eq!(Request::decode(op, &m.to_bytes()).as_ref(), Ok(&m));
                    }
                } else if let Ok(m) = Response::decode(op, &b) {
                    assert_eq!(Response::decode(op, &m.to_bytes()).as_ref(), Ok(&m));
                }
            }
        }
    }
}

#[test]
fn unknown_opnum() {
    assert_eq!(Request::decode(18, &[]), Err(Error::UnknownOpnum(18)));
    assert_eq!(Response::decode(0xffff, &[0; 4]), Err(Error::UnknownOpnum(0xffff)));
}

/// `FRS_UPDATE` field offsets from the spec's layout: GUIDs and FILETIMEs
/// aligned to 4, DWORDLONGs to 8, the name a varying array at 160.
#[test]
fn update_layout() {
    let u = update("ab");
    let mut b = Vec::new();
    u.encode(&mut b);
    assert_eq!(&b[0..4], &1u32.to_le_bytes(), "present");
    assert_eq!(&b[8..12], &0x20u32.to_le_bytes(), "attributes");
    assert_eq!(&b[12..20], &[2, 0, 0, 0, 1, 0, 0, 0], "fence: low DWORD then high, at 12 (FILETIME aligns to 4)");
    assert_eq!(&b[36..52], &g(1).0, "contentSetId");
    assert_eq!(b[52], 1, "hash");
    assert_eq!(b[72], 0xf0, "rdcSimilarity");
    assert_eq!(&b[88..104], &g(2).0, "uidDbGuid");
    assert_eq!(&b[104..112], &9u64.to_le_bytes(), "uidVersion at 104");
    assert_eq!(&b[128..136], &0x1_0000_0000u64.to_le_bytes(), "gvsnVersion");
    assert_eq!(&b[152..160], &1u64.to_le_bytes(), "parentVersion");
    assert_eq!(&b[160..164], &[0; 4], "name: offset 0");
    assert_eq!(&b[164..168], &3u32.to_le_bytes(), "name: actual count incl. NUL");
    assert_eq!(&b[168..174], &[b'a', 0, b'b', 0, 0, 0]);
    assert_eq!(&b[174..176], &[0, 0], "pad to 4");
    assert_eq!(&b[176..180], &0x10u32.to_le_bytes(), "flags");
    assert_eq!(b.len(), 180, "no trailing padding in NDR20");
    let empty = {
        let mut b = Vec::new();
        update("").encode(&mut b);
        b
    };
    assert_eq!(empty.len(), Update::MIN_WIRE_SIZE);
}

#[test]
fn rdc_file_info_layout() {
    let i = RdcFileInfo {
        rdc_filter_parameters: vec![RdcParameters::FilterMax(RdcParametersFilterMax {
            horizon_size: 128,
            window_size: 2,
        })],
        ..rdc_info()
    };
    let mut b = Vec::new();
    i.encode(&mut b);
    #[rustfmt::skip]
    let want = [
        1, 0, 0, 0,             // max_count of rdcFilterParameters (hoisted)
        0, 0, 0, 0,             // align to 8
        0x40, 0xe2, 1, 0, 0, 0, 0, 0, // onDiskFileSize 123456
        0x40, 0x0d, 3, 0, 0, 0, 0, 0, // fileSizeEstimate 200000
        1, 0,                   // rdcVersion
        1, 0,                   // rdcMinimumCompatibleVersion
        1,                      // rdcSignatureLevels
        0,                      // align to 2
        1, 0,                   // compressionAlgorithm RDC_XPRESS (enum = short)
        1, 0,                   // rdcChunkerAlgorithm RDC_FILTERMAX
        1, 0,                   // union discriminant
        128, 0, 2, 0,           // horizonSize, windowSize
    ];
    assert_eq!(b, want);
    assert_eq!(RdcFileInfo::decode(&want), Ok(i));
}

#[test]
fn context_handle_is_20_bytes() {
    let mut b = Vec::new();
    ctx(3).encode(&mut b);
    assert_eq!(b.len(), 20);
}

#[test]
fn malformed_update_names() {
    let mut base = Vec::new();
    update("ab").encode(&mut base);
    // No NUL terminator: "abc" with count 3.
    let mut b = base.clone();
    b[172..174].copy_from_slice(&[b'c', 0]);
    assert_eq!(Update::decode(&b), Err(Error::MissingNul { what: "FRS_UPDATE.name" }));
    // Count 262 > 261.
    let mut b = base.clone();
    b[164..168].copy_from_slice(&262u32.to_le_bytes());
    assert!(matches!(Update::decode(&b), Err(Error::StringTooLong { len: 262, max: 261, .. })));
    // Non-zero varying offset.
    let mut b = base.clone();
    b[160] = 1;
    assert!(matches!(Update::decode(&b), Err(Error::NonZeroOffset { offset: 1, .. })));
    // A 261-unit name (260 + NUL) is the maximum that decodes.
    let mut b = Vec::new();
    update(&"y".repeat(260)).encode(&mut b);
    assert_eq!(Update::decode(&b).map(|u| u.name.len()), Ok(260));
    let mut b = Vec::new();
    update(&"y".repeat(261)).encode(&mut b);
    assert!(matches!(Update::decode(&b), Err(Error::StringTooLong { .. })));
}

#[test]
fn huge_and_inconsistent_counts() {
    // RequestUpdates [in]: versionVectorDiffCount and max_count 0xffffffff.
    let mut w = Writer::new();
    w.guid(&g(1));
    w.guid(&g(2));
    w.u32(10);
    w.u32(0);
    w.u16(0);
    w.u32(u32::MAX);
    w.u32(u32::MAX);
    let b = w.finish();
    assert!(matches!(Request::decode(3, &b), Err(Error::CountTooLarge { count: u32::MAX, .. })));
    // Count and max_count disagree.
    let mut b2 = b.clone();
    let n = b2.len();
    b2[n - 8..n - 4].copy_from_slice(&1u32.to_le_bytes());
    assert!(matches!(Request::decode(3, &b2), Err(Error::CountMismatch { expected: 1, found: 0xffff_ffff, .. })));
    // Credits over 256.
    let mut b3 = b.clone();
    b3[32..36].copy_from_slice(&257u32.to_le_bytes());
    assert!(matches!(Request::decode(3, &b3), Err(Error::OutOfRange { value: 257, max: 256, .. })));
    // hashRequested = 2 violates [range(0,1)].
    let mut b4 = b.clone();
    b4[36] = 2;
    assert!(matches!(Request::decode(3, &b4), Err(Error::OutOfRange { value: 2, max: 1, .. })));
    // updateRequestType 3 is not an UPDATE_REQUEST_TYPE.
    let mut b5 = b.clone();
    b5[40] = 3;
    assert!(matches!(Request::decode(3, &b5), Err(Error::BadEnum { value: 3, .. })));

    // RequestUpdates [out]: actual count > max count (credits).
    let resp = RequestUpdatesResponse {
        credits_available: 1,
        updates: vec![update("a")],
        update_status: UpdateStatus::Done,
        gvsn_db_guid: g(1),
        gvsn_version: 1,
        status: 0,
    };
    let mut b = Vec::new();
    resp.encode(&mut b);
    let mut bad = b.clone();
    bad[8..12].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(RequestUpdatesResponse::decode(&bad), Err(Error::ActualExceedsMax { actual: 2, max: 1, .. })));
    let mut bad = b.clone();
    bad[0..4].copy_from_slice(&300u32.to_le_bytes());
    assert!(matches!(RequestUpdatesResponse::decode(&bad), Err(Error::OutOfRange { value: 300, .. })));
    // updateCount disagreeing with the array's actual count.
    let mut bad = b.clone();
    // Elements start at 16 (12 padded to 8); update("a") is 176 bytes.
    let upd_end = 16 + 176;
    bad[upd_end..upd_end + 4].copy_from_slice(&5u32.to_le_bytes());
    assert!(matches!(RequestUpdatesResponse::decode(&bad), Err(Error::CountMismatch { expected: 1, found: 5, .. })));

    // RdcPushSourceNeeds: 21 needs exceed CONFIG_RDC_NEED_QUEUE_SIZE.
    let req = RdcPushSourceNeedsRequest {
        server_context: ctx(1),
        source_needs: vec![RdcSourceNeed { need_offset: 1, need_size: 1 }; 21],
    };
    let mut b = Vec::new();
    req.encode(&mut b);
    assert!(matches!(RdcPushSourceNeedsRequest::decode(&b), Err(Error::OutOfRange { value: 21, max: 20, .. })));

    // Out buffers: sizeRead must equal the array's actual count.
    let resp = RdcGetFileDataResponse { buffer_size: 8, data: vec![1, 2, 3], status: 0 };
    let mut b = Vec::new();
    resp.encode(&mut b);
    let mut bad = b.clone();
    bad[16..20].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(RdcGetFileDataResponse::decode(&bad), Err(Error::CountMismatch { .. })));
    // max_count above CONFIG_TRANSPORT_MAX_BUFFER_SIZE.
    let mut bad = b.clone();
    bad[0..4].copy_from_slice(&(262_145u32).to_le_bytes());
    assert!(matches!(RdcGetFileDataResponse::decode(&bad), Err(Error::OutOfRange { .. })));

    // AsyncPoll: versionVector's max_count must equal versionVectorCount.
    let mut b = Vec::new();
    let Response::AsyncPoll(ap) = &responses()[6] else { panic!() };
    ap.encode(&mut b);
    assert_eq!(&b[32..36], &1u32.to_le_bytes(), "deferred versionVector max_count right after the struct");
    let mut bad = b.clone();
    bad[32] = 2;
    assert!(matches!(AsyncPollResponse::decode(&bad), Err(Error::CountMismatch { expected: 1, found: 2, .. })));
}

#[test]
fn rdc_union_and_ranges() {
    let info = rdc_info();
    let mut b = Vec::new();
    info.encode(&mut b);
    // First parameter (FilterMax) starts at 32: alg, discriminant, horizon, window.
    assert_eq!(&b[32..40], &[1, 0, 1, 0, 0, 4, 48, 0]);
    let mut bad = b.clone();
    bad[34] = 2; // discriminant ≠ algorithm
    assert!(matches!(RdcFileInfo::decode(&bad), Err(Error::BadSwitch { expected: 1, found: 2, .. })));
    let mut bad = b.clone();
    bad[32] = 3;
    bad[34] = 3; // RDC_MAXALGORITHM has no arm
    assert!(matches!(RdcFileInfo::decode(&bad), Err(Error::BadSwitch { .. })));
    let mut bad = b.clone();
    bad[36..38].copy_from_slice(&127u16.to_le_bytes()); // horizonSize < 128
    assert!(matches!(RdcFileInfo::decode(&bad), Err(Error::OutOfRange { value: 127, .. })));
    let mut bad = b.clone();
    bad[38..40].copy_from_slice(&97u16.to_le_bytes()); // windowSize > 96
    assert!(matches!(RdcFileInfo::decode(&bad), Err(Error::OutOfRange { value: 97, .. })));
    // rdcSignatureLevels 9 > CONFIG_RDC_MAX_LEVELS.
    let mut bad = b.clone();
    bad[0] = 9;
    bad[28] = 9;
    assert!(matches!(RdcFileInfo::decode(&bad), Err(Error::OutOfRange { value: 9, max: 8, .. })));
    // max_count ≠ rdcSignatureLevels.
    let mut bad = b.clone();
    bad[0] = 2;
    assert!(matches!(RdcFileInfo::decode(&bad), Err(Error::CountMismatch { expected: 3, found: 2, .. })));
}

#[test]
fn strict_reader_rejects_non_zero_padding() {
    let req = RequestVersionVectorRequest {
        sequence_number: 1,
        connection_id: g(1),
        content_set_id: g(2),
        request_type: VersionRequestType::NormalSync,
        change_type: VersionChangeType::Notify,
        vv_generation: 3,
    };
    let mut b = Vec::new();
    req.encode(&mut b);
    // 4 + 16 + 16 + 2 + 2 = 40: already 8-aligned, vvGeneration at 40.
    assert_eq!(b.len(), 48);
    // Make the padding non-trivial: with sequence_number's alignment shifted
    // by decoding from offset 1 the hyper would be misaligned.
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&b);
    assert!(RequestVersionVectorRequest::decode(&shifted).is_err());
    // RdcGetSignatures: level (u8) at 20 then 3 bytes of padding before offset.
    let sig = RdcGetSignaturesRequest { server_context: ctx(1), level: 1, offset: 5, length: 1 };
    let mut b = Vec::new();
    sig.encode(&mut b);
    assert_eq!(b.len(), 36);
    assert_eq!(&b[21..24], &[0, 0, 0]);
    b[22] = 0x55;
    assert_eq!(RdcGetSignaturesRequest::decode(&b), Ok(sig), "lenient by default");
    let mut r = Reader::strict(&b);
    assert_eq!(RdcGetSignaturesRequest::read(&mut r), Err(Error::NonZeroPadding { offset: 22 }));
    // level 0 and 9 are out of [range(1, 8)].
    b[22] = 0;
    b[20] = 9;
    assert!(matches!(RdcGetSignaturesRequest::decode(&b), Err(Error::OutOfRange { value: 9, .. })));
}

#[test]
fn request_records_null_pointer_and_mismatch() {
    let resp = RequestRecordsResponse {
        max_records: 1,
        num_records: 1,
        compressed_records: Some(vec![7; 3]),
        records_status: RecordsStatus::Done,
        status: 0,
    };
    let mut b = Vec::new();
    resp.encode(&mut b);
    #[rustfmt::skip]
    assert_eq!(b, [
        1, 0, 0, 0,       // *maxRecords
        1, 0, 0, 0,       // *numRecords
        3, 0, 0, 0,       // *numBytes
        0, 0, 2, 0,       // unique referent id
        3, 0, 0, 0, 7, 7, 7, // conformant array
        0,                // align to 2
        0, 0,             // RECORDS_STATUS_DONE
        0, 0,             // align to 4
        0, 0, 0, 0,       // status
    ]);
    let mut bad = b.clone();
    bad[8] = 4;
    assert!(matches!(RequestRecordsResponse::decode(&bad), Err(Error::CountMismatch { .. })));
}

#[test]
fn pipe_layout() {
    let resp = BytePipeResponse { chunks: vec![vec![0xaa; 3], vec![], vec![0xbb]], status: 0x2343 };
    let mut b = Vec::new();
    resp.encode(&mut b);
    #[rustfmt::skip]
    assert_eq!(b, [
        3, 0, 0, 0, 0xaa, 0xaa, 0xaa, 0, // chunk of 3, pad
        1, 0, 0, 0, 0xbb, 0, 0, 0,       // chunk of 1 (the empty one skipped), pad
        0, 0, 0, 0,                      // end of pipe
        0x43, 0x23, 0, 0,                // status
    ]);
    let back = BytePipeResponse::decode(&b).unwrap();
    assert_eq!(back.data(), [0xaa, 0xaa, 0xaa, 0xbb]);
}
