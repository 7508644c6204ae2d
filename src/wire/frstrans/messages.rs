//! Request (`[in]`) and response (`[out]`) stub data of every FrsTransport
//! method, opnums 0..=17 (MS-FRS2 §3.2.4.1, IDL in §6).
//!
//! Rules applied throughout:
//! - Top-level pointer parameters are `[ref]`: no wire representation, the
//!   pointee sits in place. `T **` out parameters are a ref pointer to a
//!   unique pointer: a referent id then, right after, the pointee.
//! - `[size_is(n), length_is(*m)] byte *buf` out parameters are
//!   conformant-varying arrays whose `max_count` is the caller's `[in]`
//!   buffer size; responses keep that value (`buffer_size` etc.) so that they
//!   re-encode byte for byte, and the separate length parameter (`*sizeRead`
//!   …) is derived from the data and checked on decode.
//! - Every response ends with the method's `DWORD` return value, `status`.
//! - `[range]` attributes are checked on decode ([`Error::OutOfRange`]).

use super::types::*;
use crate::wire::ndr::{Error, Guid, Reader, Result, Writer};

fn check_eq(what: &'static str, expected: u32, found: u32) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::CountMismatch { what, expected: expected.into(), found: found.into() })
    }
}

/// Reads `[out, size_is(max), length_is(*len)] byte *buf` followed by
/// `DWORD *len`, checking the range of `max` and that `*len` matches.
fn read_out_buffer(r: &mut Reader<'_>, what: &'static str, limit: u32) -> Result<(u32, Vec<u8>)> {
    let (max, data) = r.conformant_varying_bytes(what)?;
    range(what, max.into(), 0, limit.into())?;
    let len = r.u32()?;
    check_eq(what, data.len() as u32, len)?;
    Ok((max, data))
}

fn write_out_buffer(w: &mut Writer<'_>, max: u32, data: &[u8]) {
    w.conformant_varying_bytes(max, data);
    w.u32(data.len() as u32);
}

/// A response whose only `[out]` value is the `DWORD` return value:
/// CheckConnectivity, EstablishSession, RequestVersionVector, UpdateCancel,
/// RdcPushSourceNeeds, Opnum14NotUsedOnWire, RdcFileDataTransferKeepAlive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct StatusResponse {
    /// The return value (a Win32 error code; 0 = success).
    pub status: u32,
}

impl NdrCodec for StatusResponse {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.u32(self.status);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(StatusResponse { status: r.u32()? })
    }
}

/// A request whose only `[in]` value is the server context handle:
/// RdcClose, RawGetFileDataAsync, RdcGetFileDataAsync,
/// RdcFileDataTransferKeepAlive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ContextRequest {
    /// `serverContext`.
    pub server_context: ContextHandle,
}

impl NdrCodec for ContextRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        self.server_context.write(w);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ContextRequest { server_context: ContextHandle::read(r)? })
    }
}

// ---- opnum 0 -------------------------------------------------------------

/// CheckConnectivity `[in]` (opnum 0, §3.2.4.1.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CheckConnectivityRequest {
    /// `replicaSetId`.
    pub replica_set_id: Guid,
    /// `connectionId`.
    pub connection_id: Guid,
}

impl NdrCodec for CheckConnectivityRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.guid(&self.replica_set_id);
        w.guid(&self.connection_id);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(CheckConnectivityRequest { replica_set_id: r.guid()?, connection_id: r.guid()? })
    }
}

/// CheckConnectivity `[out]` (opnum 0).
pub type CheckConnectivityResponse = StatusResponse;

// ---- opnum 1 -------------------------------------------------------------

/// EstablishConnection `[in]` (opnum 1, §3.2.4.1.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EstablishConnectionRequest {
    /// `replicaSetId`.
    pub replica_set_id: Guid,
    /// `connectionId`.
    pub connection_id: Guid,
    /// `downstreamProtocolVersion` ([`protocol_version`]).
    pub downstream_protocol_version: u32,
    /// `downstreamFlags` (`TRANSPORT_SUPPORTS_RDC_SIMILARITY`).
    pub downstream_flags: u32,
}

impl NdrCodec for EstablishConnectionRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.guid(&self.replica_set_id);
        w.guid(&self.connection_id);
        w.u32(self.downstream_protocol_version);
        w.u32(self.downstream_flags);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(EstablishConnectionRequest {
            replica_set_id: r.guid()?,
            connection_id: r.guid()?,
            downstream_protocol_version: r.u32()?,
            downstream_flags: r.u32()?,
        })
    }
}

/// EstablishConnection `[out]` (opnum 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EstablishConnectionResponse {
    /// `upstreamProtocolVersion`.
    pub upstream_protocol_version: u32,
    /// `upstreamFlags`.
    pub upstream_flags: u32,
    /// Return value.
    pub status: u32,
}

impl NdrCodec for EstablishConnectionResponse {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.u32(self.upstream_protocol_version);
        w.u32(self.upstream_flags);
        w.u32(self.status);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(EstablishConnectionResponse {
            upstream_protocol_version: r.u32()?,
            upstream_flags: r.u32()?,
            status: r.u32()?,
        })
    }
}

// ---- opnum 2 -------------------------------------------------------------

/// EstablishSession `[in]` (opnum 2, §3.2.4.1.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EstablishSessionRequest {
    /// `connectionId`.
    pub connection_id: Guid,
    /// `contentSetId`.
    pub content_set_id: Guid,
}

impl NdrCodec for EstablishSessionRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.guid(&self.connection_id);
        w.guid(&self.content_set_id);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(EstablishSessionRequest { connection_id: r.guid()?, content_set_id: r.guid()? })
    }
}

/// EstablishSession `[out]` (opnum 2).
pub type EstablishSessionResponse = StatusResponse;

// ---- opnum 3 -------------------------------------------------------------

/// RequestUpdates `[in]` (opnum 3, §3.2.4.1.4). `versionVectorDiffCount` is
/// `version_vector_diff.len()`; the array is a top-level `[ref]` pointer,
/// i.e. a conformant array in place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestUpdatesRequest {
    /// `connectionId`.
    pub connection_id: Guid,
    /// `contentSetId`.
    pub content_set_id: Guid,
    /// `creditsAvailable`, 0..=256.
    pub credits_available: u32,
    /// `hashRequested` (`[range(0,1)] long`).
    pub hash_requested: bool,
    /// `updateRequestType`.
    pub update_request_type: UpdateRequestType,
    /// `versionVectorDiff`.
    pub version_vector_diff: Vec<VersionVector>,
}

impl NdrCodec for RequestUpdatesRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.guid(&self.connection_id);
        w.guid(&self.content_set_id);
        w.u32(self.credits_available);
        w.bool32(self.hash_requested);
        self.update_request_type.write(w);
        w.u32(self.version_vector_diff.len() as u32);
        w.conformant_array(&self.version_vector_diff, |w, v| v.write(w));
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let connection_id = r.guid()?;
        let content_set_id = r.guid()?;
        let credits_available = r.u32()?;
        range("RequestUpdates.creditsAvailable", credits_available.into(), 0, MAX_CREDITS.into())?;
        let hash_requested = r.bool32_strict("RequestUpdates.hashRequested")?;
        let update_request_type = UpdateRequestType::read(r)?;
        let count = r.u32()?;
        let version_vector_diff =
            sized_array(r, "RequestUpdates.versionVectorDiff", count, VersionVector::WIRE_SIZE, VersionVector::read)?;
        Ok(RequestUpdatesRequest {
            connection_id,
            content_set_id,
            credits_available,
            hash_requested,
            update_request_type,
            version_vector_diff,
        })
    }
}

/// RequestUpdates `[out]` (opnum 3). `frsUpdate` is a conformant-varying
/// array: `max_count` = the request's `creditsAvailable` (kept in
/// `credits_available`), `actual_count` = `*updateCount` = `updates.len()`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestUpdatesResponse {
    /// The request's `creditsAvailable` (the array's `max_count`), ≤ 256.
    pub credits_available: u32,
    /// `frsUpdate[0..*updateCount]`.
    pub updates: Vec<Update>,
    /// `updateStatus`.
    pub update_status: UpdateStatus,
    /// `gvsnDbGuid`: the cursor's database.
    pub gvsn_db_guid: Guid,
    /// `gvsnVersion`: the cursor's version.
    pub gvsn_version: u64,
    /// Return value.
    pub status: u32,
}

impl NdrCodec for RequestUpdatesResponse {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.conformant_varying_header(self.credits_available, self.updates.len() as u32);
        for u in &self.updates {
            u.write(w);
        }
        w.u32(self.updates.len() as u32);
        self.update_status.write(w);
        w.guid(&self.gvsn_db_guid);
        w.u64(self.gvsn_version);
        w.u32(self.status);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        const WHAT: &str = "RequestUpdates.frsUpdate";
        let (max, n) = r.conformant_varying_header(WHAT, Update::MIN_WIRE_SIZE)?;
        range(WHAT, max.into(), 0, MAX_CREDITS.into())?;
        let updates = r.elements(WHAT, n, Update::MIN_WIRE_SIZE, Update::read)?;
        check_eq("RequestUpdates.updateCount", n, r.u32()?)?;
        Ok(RequestUpdatesResponse {
            credits_available: max,
            updates,
            update_status: UpdateStatus::read(r)?,
            gvsn_db_guid: r.guid()?,
            gvsn_version: r.u64()?,
            status: r.u32()?,
        })
    }
}

// ---- opnum 4 -------------------------------------------------------------

/// RequestVersionVector `[in]` (opnum 4, §3.2.4.1.5). The answer arrives
/// through AsyncPoll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestVersionVectorRequest {
    /// `sequenceNumber`.
    pub sequence_number: u32,
    /// `connectionId`.
    pub connection_id: Guid,
    /// `contentSetId`.
    pub content_set_id: Guid,
    /// `requestType`.
    pub request_type: VersionRequestType,
    /// `changeType`.
    pub change_type: VersionChangeType,
    /// `vvGeneration`.
    pub vv_generation: u64,
}

impl NdrCodec for RequestVersionVectorRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.u32(self.sequence_number);
        w.guid(&self.connection_id);
        w.guid(&self.content_set_id);
        self.request_type.write(w);
        self.change_type.write(w);
        w.u64(self.vv_generation);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(RequestVersionVectorRequest {
            sequence_number: r.u32()?,
            connection_id: r.guid()?,
            content_set_id: r.guid()?,
            request_type: VersionRequestType::read(r)?,
            change_type: VersionChangeType::read(r)?,
            vv_generation: r.u64()?,
        })
    }
}

/// RequestVersionVector `[out]` (opnum 4).
pub type RequestVersionVectorResponse = StatusResponse;

// ---- opnum 5 -------------------------------------------------------------

/// AsyncPoll `[in]` (opnum 5, §3.2.4.1.6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AsyncPollRequest {
    /// `connectionId`.
    pub connection_id: Guid,
}

impl NdrCodec for AsyncPollRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.guid(&self.connection_id);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(AsyncPollRequest { connection_id: r.guid()? })
    }
}

/// AsyncPoll `[out]` (opnum 5): the response context (its two arrays
/// deferred after it), then the return value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsyncPollResponse {
    /// `response`.
    pub response: AsyncResponseContext,
    /// Return value.
    pub status: u32,
}

impl NdrCodec for AsyncPollResponse {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        self.response.write(w);
        w.flush_deferred();
        w.u32(self.status);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(AsyncPollResponse { response: AsyncResponseContext::read(r)?, status: r.u32()? })
    }
}

// ---- opnum 6 -------------------------------------------------------------

/// RequestRecords `[in]` (opnum 6, §3.2.4.1.7): slow-sync record download.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RequestRecordsRequest {
    /// `connectionId`.
    pub connection_id: Guid,
    /// `contentSetId`.
    pub content_set_id: Guid,
    /// `uidDbGuid`: where to resume.
    pub uid_db_guid: Guid,
    /// `uidVersion`: where to resume.
    pub uid_version: u64,
    /// `*maxRecords` (in).
    pub max_records: u32,
}

impl NdrCodec for RequestRecordsRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.guid(&self.connection_id);
        w.guid(&self.content_set_id);
        w.guid(&self.uid_db_guid);
        w.u64(self.uid_version);
        w.u32(self.max_records);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(RequestRecordsRequest {
            connection_id: r.guid()?,
            content_set_id: r.guid()?,
            uid_db_guid: r.guid()?,
            uid_version: r.u64()?,
            max_records: r.u32()?,
        })
    }
}

/// RequestRecords `[out]` (opnum 6). `compressedRecords` is `byte **` with
/// `size_is(,*numBytes)`: a unique referent id then a conformant array
/// whose `max_count` must equal `*numBytes` (derived from the data). A null
/// pointer encodes `numBytes` = 0 and decodes whatever `numBytes` was.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestRecordsResponse {
    /// `*maxRecords` (out).
    pub max_records: u32,
    /// `*numRecords`.
    pub num_records: u32,
    /// `*compressedRecords` (`*numBytes` bytes).
    pub compressed_records: Option<Vec<u8>>,
    /// `*recordsStatus`.
    pub records_status: RecordsStatus,
    /// Return value.
    pub status: u32,
}

impl NdrCodec for RequestRecordsResponse {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.u32(self.max_records);
        w.u32(self.num_records);
        w.u32(self.compressed_records.as_ref().map_or(0, |v| v.len() as u32));
        w.unique_ptr(self.compressed_records.as_deref(), |w, v| w.conformant_bytes(v));
        w.flush_deferred();
        self.records_status.write(w);
        w.u32(self.status);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let max_records = r.u32()?;
        let num_records = r.u32()?;
        let num_bytes = r.u32()?;
        let compressed_records = match r.unique_ptr()? {
            None => None,
            Some(_) => {
                let n = r.conformant_count("RequestRecords.compressedRecords", 1)?;
                check_eq("RequestRecords.compressedRecords", num_bytes, n)?;
                Some(r.bytes(n as usize)?)
            }
        };
        Ok(RequestRecordsResponse {
            max_records,
            num_records,
            compressed_records,
            records_status: RecordsStatus::read(r)?,
            status: r.u32()?,
        })
    }
}

// ---- opnum 7 -------------------------------------------------------------

/// UpdateCancel `[in]` (opnum 7, §3.2.4.1.8).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UpdateCancelRequest {
    /// `connectionId`.
    pub connection_id: Guid,
    /// `cancelData` (by value, aligned to 8).
    pub cancel_data: UpdateCancelData,
}

impl NdrCodec for UpdateCancelRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.guid(&self.connection_id);
        self.cancel_data.write(w);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(UpdateCancelRequest { connection_id: r.guid()?, cancel_data: UpdateCancelData::read(r)? })
    }
}

/// UpdateCancel `[out]` (opnum 7).
pub type UpdateCancelResponse = StatusResponse;

// ---- opnum 8 -------------------------------------------------------------

/// The `[in]` of RawGetFileData (opnum 8, §3.2.4.1.9) and RdcGetFileData
/// (opnum 11, §3.2.4.1.12): a server context and how much to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FileDataRequest {
    /// `serverContext`.
    pub server_context: ContextHandle,
    /// `bufferSize`, 0..=262144.
    pub buffer_size: u32,
}

impl NdrCodec for FileDataRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        self.server_context.write(w);
        w.u32(self.buffer_size);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let server_context = ContextHandle::read(r)?;
        let buffer_size = r.u32()?;
        range("bufferSize", buffer_size.into(), 0, CONFIG_TRANSPORT_MAX_BUFFER_SIZE.into())?;
        Ok(FileDataRequest { server_context, buffer_size })
    }
}

/// RawGetFileData `[in]` (opnum 8, §3.2.4.1.9).
pub type RawGetFileDataRequest = FileDataRequest;

/// RawGetFileData `[out]` (opnum 8).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RawGetFileDataResponse {
    /// `*serverContext` (out).
    pub server_context: ContextHandle,
    /// The request's `bufferSize` (the array's `max_count`).
    pub buffer_size: u32,
    /// `dataBuffer[0..*sizeRead]`.
    pub data: Vec<u8>,
    /// `*isEndOfFile`.
    pub is_end_of_file: bool,
    /// Return value.
    pub status: u32,
}

impl NdrCodec for RawGetFileDataResponse {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        self.server_context.write(w);
        write_out_buffer(w, self.buffer_size, &self.data);
        w.bool32(self.is_end_of_file);
        w.u32(self.status);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let server_context = ContextHandle::read(r)?;
        let (buffer_size, data) = read_out_buffer(r, "RawGetFileData.dataBuffer", CONFIG_TRANSPORT_MAX_BUFFER_SIZE)?;
        Ok(RawGetFileDataResponse { server_context, buffer_size, data, is_end_of_file: r.bool32()?, status: r.u32()? })
    }
}

// ---- opnum 9 -------------------------------------------------------------

/// RdcGetSignatures `[in]` (opnum 9, §3.2.4.1.10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RdcGetSignaturesRequest {
    /// `serverContext`.
    pub server_context: ContextHandle,
    /// `level`, 1..=8.
    pub level: u8,
    /// `offset` into the signature stream.
    pub offset: u64,
    /// `length`, 1..=65536 (the buffer's `max_count`).
    pub length: u32,
}

impl NdrCodec for RdcGetSignaturesRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        self.server_context.write(w);
        w.u8(self.level);
        w.u64(self.offset);
        w.u32(self.length);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let server_context = ContextHandle::read(r)?;
        let level = r.u8()?;
        range("RdcGetSignatures.level", level.into(), 1, CONFIG_RDC_MAX_LEVELS.into())?;
        let offset = r.u64()?;
        let length = r.u32()?;
        range("RdcGetSignatures.length", length.into(), 1, CONFIG_RDC_MAX_NEEDLENGTH.into())?;
        Ok(RdcGetSignaturesRequest { server_context, level, offset, length })
    }
}

/// RdcGetSignatures `[out]` (opnum 9).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RdcGetSignaturesResponse {
    /// The request's `length` (the array's `max_count`), ≤ 65536.
    pub length: u32,
    /// `buffer[0..*sizeRead]`.
    pub buffer: Vec<u8>,
    /// Return value.
    pub status: u32,
}

impl NdrCodec for RdcGetSignaturesResponse {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        write_out_buffer(w, self.length, &self.buffer);
        w.u32(self.status);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let (length, buffer) = read_out_buffer(r, "RdcGetSignatures.buffer", CONFIG_RDC_MAX_NEEDLENGTH)?;
        Ok(RdcGetSignaturesResponse { length, buffer, status: r.u32()? })
    }
}

// ---- opnum 10 ------------------------------------------------------------

/// RdcPushSourceNeeds `[in]` (opnum 10, §3.2.4.1.11). The conformant array
/// comes *before* `needCount`; both are `source_needs.len()` (≤ 20).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RdcPushSourceNeedsRequest {
    /// `serverContext`.
    pub server_context: ContextHandle,
    /// `sourceNeeds[0..needCount]`.
    pub source_needs: Vec<RdcSourceNeed>,
}

impl NdrCodec for RdcPushSourceNeedsRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        self.server_context.write(w);
        w.conformant_array(&self.source_needs, |w, n| n.write(w));
        w.u32(self.source_needs.len() as u32);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        const WHAT: &str = "RdcPushSourceNeeds.sourceNeeds";
        let server_context = ContextHandle::read(r)?;
        let n = r.u32()?;
        range(WHAT, n.into(), 0, CONFIG_RDC_NEED_QUEUE_SIZE.into())?;
        let source_needs = r.elements(WHAT, n, 16, RdcSourceNeed::read)?;
        check_eq("RdcPushSourceNeeds.needCount", n, r.u32()?)?;
        Ok(RdcPushSourceNeedsRequest { server_context, source_needs })
    }
}

/// RdcPushSourceNeeds `[out]` (opnum 10).
pub type RdcPushSourceNeedsResponse = StatusResponse;

// ---- opnum 11 ------------------------------------------------------------

/// RdcGetFileData `[in]` (opnum 11, §3.2.4.1.12).
pub type RdcGetFileDataRequest = FileDataRequest;

/// RdcGetFileData `[out]` (opnum 11).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RdcGetFileDataResponse {
    /// The request's `bufferSize` (the array's `max_count`).
    pub buffer_size: u32,
    /// `dataBuffer[0..*sizeReturned]`.
    pub data: Vec<u8>,
    /// Return value.
    pub status: u32,
}

impl NdrCodec for RdcGetFileDataResponse {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        write_out_buffer(w, self.buffer_size, &self.data);
        w.u32(self.status);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let (buffer_size, data) = read_out_buffer(r, "RdcGetFileData.dataBuffer", CONFIG_TRANSPORT_MAX_BUFFER_SIZE)?;
        Ok(RdcGetFileDataResponse { buffer_size, data, status: r.u32()? })
    }
}

// ---- opnum 12 ------------------------------------------------------------

/// RdcClose `[in]` (opnum 12, §3.2.4.1.13).
pub type RdcCloseRequest = ContextRequest;

/// RdcClose `[out]` (opnum 12): the (now null) handle and the status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RdcCloseResponse {
    /// `*serverContext` (out).
    pub server_context: ContextHandle,
    /// Return value.
    pub status: u32,
}

impl NdrCodec for RdcCloseResponse {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        self.server_context.write(w);
        w.u32(self.status);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(RdcCloseResponse { server_context: ContextHandle::read(r)?, status: r.u32()? })
    }
}

// ---- opnum 13 ------------------------------------------------------------

/// InitializeFileTransferAsync `[in]` (opnum 13, §3.2.4.1.14).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InitializeFileTransferAsyncRequest {
    /// `connectionId`.
    pub connection_id: Guid,
    /// `*frsUpdate` (in).
    pub frs_update: Update,
    /// `rdcDesired` (`[range(0,1)] long`).
    pub rdc_desired: bool,
    /// `*stagingPolicy` (in).
    pub staging_policy: StagingPolicy,
    /// `bufferSize`, 0..=262144.
    pub buffer_size: u32,
}

impl NdrCodec for InitializeFileTransferAsyncRequest {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.guid(&self.connection_id);
        self.frs_update.write(w);
        w.bool32(self.rdc_desired);
        self.staging_policy.write(w);
        w.u32(self.buffer_size);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let connection_id = r.guid()?;
        let frs_update = Update::read(r)?;
        let rdc_desired = r.bool32_strict("InitializeFileTransferAsync.rdcDesired")?;
        let staging_policy = StagingPolicy::read(r)?;
        let buffer_size = r.u32()?;
        range(
            "InitializeFileTransferAsync.bufferSize",
            buffer_size.into(),
            0,
            CONFIG_TRANSPORT_MAX_BUFFER_SIZE.into(),
        )?;
        Ok(InitializeFileTransferAsyncRequest { connection_id, frs_update, rdc_desired, staging_policy, buffer_size })
    }
}

/// InitializeFileTransferAsync `[out]` (opnum 13). `rdcFileInfo` is
/// `FRS_RDC_FILEINFO **`: a unique referent id, then the conformant
/// structure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InitializeFileTransferAsyncResponse {
    /// `*frsUpdate` (out).
    pub frs_update: Update,
    /// `*stagingPolicy` (out).
    pub staging_policy: StagingPolicy,
    /// `*serverContext`; null when the whole file fitted in `data`.
    pub server_context: ContextHandle,
    /// `*rdcFileInfo`.
    pub rdc_file_info: Option<RdcFileInfo>,
    /// The request's `bufferSize` (the array's `max_count`).
    pub buffer_size: u32,
    /// `dataBuffer[0..*sizeRead]`.
    pub data: Vec<u8>,
    /// `*isEndOfFile`.
    pub is_end_of_file: bool,
    /// Return value.
    pub status: u32,
}

impl NdrCodec for InitializeFileTransferAsyncResponse {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        self.frs_update.write(w);
        self.staging_policy.write(w);
        self.server_context.write(w);
        w.unique_ptr(self.rdc_file_info.as_ref(), |w, i| i.write(w));
        w.flush_deferred();
        write_out_buffer(w, self.buffer_size, &self.data);
        w.bool32(self.is_end_of_file);
        w.u32(self.status);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let frs_update = Update::read(r)?;
        let staging_policy = StagingPolicy::read(r)?;
        let server_context = ContextHandle::read(r)?;
        let rdc_file_info = match r.unique_ptr()? {
            None => None,
            Some(_) => Some(RdcFileInfo::read(r)?),
        };
        let (buffer_size, data) =
            read_out_buffer(r, "InitializeFileTransferAsync.dataBuffer", CONFIG_TRANSPORT_MAX_BUFFER_SIZE)?;
        Ok(InitializeFileTransferAsyncResponse {
            frs_update,
            staging_policy,
            server_context,
            rdc_file_info,
            buffer_size,
            data,
            is_end_of_file: r.bool32()?,
            status: r.u32()?,
        })
    }
}

// ---- opnum 14 ------------------------------------------------------------

/// Opnum14NotUsedOnWire `[in]` (opnum 14, §3.2.4.1): `(void)`, empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Opnum14NotUsedOnWireRequest;

impl NdrCodec for Opnum14NotUsedOnWireRequest {
    fn write<'a>(&'a self, _w: &mut Writer<'a>) {}

    fn read(_r: &mut Reader<'_>) -> Result<Self> {
        Ok(Opnum14NotUsedOnWireRequest)
    }
}

/// Opnum14NotUsedOnWire `[out]`: the `DWORD` return value.
pub type Opnum14NotUsedOnWireResponse = StatusResponse;

// ---- opnums 15, 16 ---------------------------------------------------------

/// RawGetFileDataAsync `[in]` (opnum 15, §3.2.4.1.15).
pub type RawGetFileDataAsyncRequest = ContextRequest;
/// RdcGetFileDataAsync `[in]` (opnum 16, §3.2.4.1.16).
pub type RdcGetFileDataAsyncRequest = ContextRequest;

/// RawGetFileDataAsync / RdcGetFileDataAsync `[out]` (opnums 15, 16):
/// the `BYTE_PIPE` (§2.2.1.3.7) then the return value.
///
/// An `[out]` pipe is sent before the other `[out]` values ([C706]
/// §14.3.11): chunks of `u32 count` + bytes (each count aligned to 4), ended
/// by an empty chunk. This type holds the whole pipe in memory, one `Vec`
/// per non-empty chunk; a streaming transport would emit the chunks as they
/// are produced and then the encoded `status`. Empty chunks are not
/// representable (they end the pipe) and are skipped by the encoder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BytePipeResponse {
    /// The pipe's chunks, in order.
    pub chunks: Vec<Vec<u8>>,
    /// Return value.
    pub status: u32,
}

impl BytePipeResponse {
    /// All the bytes the pipe carried.
    pub fn data(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

impl NdrCodec for BytePipeResponse {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.byte_pipe(&self.chunks);
        w.u32(self.status);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(BytePipeResponse { chunks: r.byte_pipe("BYTE_PIPE")?, status: r.u32()? })
    }
}

/// RawGetFileDataAsync `[out]` (opnum 15).
pub type RawGetFileDataAsyncResponse = BytePipeResponse;
/// RdcGetFileDataAsync `[out]` (opnum 16).
pub type RdcGetFileDataAsyncResponse = BytePipeResponse;

// ---- opnum 17 ------------------------------------------------------------

/// RdcFileDataTransferKeepAlive `[in]` (opnum 17, §3.2.4.1.17).
pub type RdcFileDataTransferKeepAliveRequest = ContextRequest;
/// RdcFileDataTransferKeepAlive `[out]` (opnum 17).
pub type RdcFileDataTransferKeepAliveResponse = StatusResponse;
