//! The data types of MS-FRS2 §2.2.1 (constants, enumerations, aggregates)
//! with their NDR20 encodings.

use crate::wire::ndr::{Error, Guid, Reader, Result, Writer};

/// An NDR-encodable value: `write` emits it at the writer's position
/// (queueing any embedded pointees), `read` consumes it from a cursor.
/// `encode`/`decode` handle a whole stub buffer.
pub trait NdrCodec: Sized {
    /// Writes the value; `'a` is how long deferred pointees borrow it.
    fn write<'a>(&'a self, w: &mut Writer<'a>);
    /// Reads the value from untrusted input.
    fn read(r: &mut Reader<'_>) -> Result<Self>;

    /// Encodes the value as a complete stub buffer appended to `out`
    /// (alignment is relative to where the value starts).
    fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new();
        self.write(&mut w);
        out.extend_from_slice(&w.finish());
    }

    /// Decodes a complete stub buffer; trailing bytes are an error.
    fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.expect_end()?;
        Ok(v)
    }
}

/// Boxed values (the large FRS_UPDATE-carrying messages in
/// [`Request`](super::Request)/[`Response`](super::Response)) encode as the
/// value.
impl<T: NdrCodec> NdrCodec for Box<T> {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        (**self).write(w);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        T::read(r).map(Box::new)
    }
}

/// `FRS_COMMUNICATION_PROTOCOL_VERSION` values (§2.2.1.1.1).
pub mod protocol_version {
    /// Windows Server 2003 R2.
    pub const W2K3R2: u32 = 0x0005_0000;
    /// Windows Server 2008 and 2008 R2.
    pub const LONGHORN_SERVER: u32 = 0x0005_0002;
    /// Windows Server 2012.
    pub const WIN8_SERVER: u32 = 0x0005_0003;
    /// Windows Server 2012 R2 and later.
    pub const WINBLUE_SERVER: u32 = 0x0005_0004;
}

/// `CONFIG_RDC_VERSION` (§2.2.1.1.2).
pub const CONFIG_RDC_VERSION: u16 = 1;
/// `CONFIG_RDC_VERSION_COMPATIBLE` (§2.2.1.1.3).
pub const CONFIG_RDC_VERSION_COMPATIBLE: u16 = 1;
/// `CONFIG_RDC_MAX_LEVELS` (§2.2.1.1.4).
pub const CONFIG_RDC_MAX_LEVELS: u8 = 8;
/// `CONFIG_RDC_MAX_NEEDLENGTH` (§2.2.1.1.5).
pub const CONFIG_RDC_MAX_NEEDLENGTH: u32 = 65536;
/// `CONFIG_RDC_NEED_QUEUE_SIZE` (§2.2.1.1.6).
pub const CONFIG_RDC_NEED_QUEUE_SIZE: u32 = 20;
/// `CONFIG_RDC_HORIZONSIZE_MIN` (§2.2.1.1.7).
pub const CONFIG_RDC_HORIZONSIZE_MIN: u16 = 128;
/// `CONFIG_RDC_HORIZONSIZE_MAX` (§2.2.1.1.8).
pub const CONFIG_RDC_HORIZONSIZE_MAX: u16 = 16 * 1024;
/// `CONFIG_RDC_HASHWINDOWSIZE_MIN` (§2.2.1.1.9).
pub const CONFIG_RDC_HASHWINDOWSIZE_MIN: u16 = 2;
/// `CONFIG_RDC_HASHWINDOWSIZE_MAX` (§2.2.1.1.10).
pub const CONFIG_RDC_HASHWINDOWSIZE_MAX: u16 = 96;
/// `CONFIG_RDC_SIMILARITY_DATASIZE` (§2.2.1.1.11).
pub const CONFIG_RDC_SIMILARITY_DATASIZE: usize = 16;
/// `CONFIG_TRANSPORT_MAX_BUFFER_SIZE` (§2.2.1.1.12).
pub const CONFIG_TRANSPORT_MAX_BUFFER_SIZE: u32 = 262_144;
/// `CONFIG_FILEHASH_DATASIZE` (§2.2.1.1.13).
pub const CONFIG_FILEHASH_DATASIZE: usize = 20;
/// `FRS_UPDATE_FLAG_GHOSTED_HEADER` (§2.2.1.1.14).
pub const FRS_UPDATE_FLAG_GHOSTED_HEADER: u32 = 0x04;
/// `FRS_UPDATE_FLAG_DATA` (§2.2.1.1.15).
pub const FRS_UPDATE_FLAG_DATA: u32 = 0x08;
/// `FRS_UPDATE_FLAG_CLOCK_DECREMENTED` (§2.2.1.1.18).
pub const FRS_UPDATE_FLAG_CLOCK_DECREMENTED: u32 = 0x10;
/// `TRANSPORT_SUPPORTS_RDC_SIMILARITY`, the only `TransportFlags` bit (§2.2.1.2.1).
pub const TRANSPORT_SUPPORTS_RDC_SIMILARITY: u32 = 1;
/// Maximum `FRS_UPDATE.name` length in UTF-16 units, NUL included
/// (`[string] WCHAR name[260+1]`, §2.2.1.4.4).
pub const FRS_UPDATE_NAME_MAX: u32 = 261;
/// Maximum credits of a RequestUpdates call (`[range(0,256)]`, §3.2.4.1.4).
pub const MAX_CREDITS: u32 = 256;

/// An NDR enum: 16 bits on the wire in NDR20 (no `[v1_enum]` in the IDL).
macro_rules! wire_enum16 {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $v:ident = $n:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum $name {
            $($(#[$vm])* $v = $n),*
        }

        impl $name {
            /// The wire value.
            pub fn to_wire(self) -> u16 {
                self as u16
            }

            /// From the wire value; values the spec does not define are errors.
            pub fn from_wire(v: u16) -> Result<Self> {
                match v {
                    $($n => Ok(Self::$v),)*
                    _ => Err(Error::BadEnum { what: $what, value: v.into() }),
                }
            }
        }

        impl NdrCodec for $name {
            fn write<'a>(&'a self, w: &mut Writer<'a>) {
                w.u16(*self as u16);
            }

            fn read(r: &mut Reader<'_>) -> Result<Self> {
                Self::from_wire(r.u16()?)
            }
        }
    };
}

wire_enum16! {
    /// `RDC_FILE_COMPRESSION_TYPES` (§2.2.1.2.2).
    RdcFileCompressionType, "RDC_FILE_COMPRESSION_TYPES" {
        /// `RDC_UNCOMPRESSED`.
        Uncompressed = 0,
        /// `RDC_XPRESS`.
        Xpress = 1,
    }
}

wire_enum16! {
    /// `RDC_CHUNKER_ALGORITHM` (§2.2.1.2.3).
    RdcChunkerAlgorithm, "RDC_CHUNKER_ALGORITHM" {
        /// `RDC_FILTERGENERIC`.
        FilterGeneric = 0,
        /// `RDC_FILTERMAX`.
        FilterMax = 1,
        /// `RDC_FILTERPOINT`.
        FilterPoint = 2,
        /// `RDC_MAXALGORITHM`.
        MaxAlgorithm = 3,
    }
}

wire_enum16! {
    /// `UPDATE_REQUEST_TYPE` (§2.2.1.2.4).
    UpdateRequestType, "UPDATE_REQUEST_TYPE" {
        /// `UPDATE_REQUEST_ALL`.
        All = 0,
        /// `UPDATE_REQUEST_TOMBSTONES`.
        Tombstones = 1,
        /// `UPDATE_REQUEST_LIVE`.
        Live = 2,
    }
}

wire_enum16! {
    /// `UPDATE_STATUS` (§2.2.1.2.5).
    UpdateStatus, "UPDATE_STATUS" {
        /// `UPDATE_STATUS_DONE`.
        Done = 2,
        /// `UPDATE_STATUS_MORE`.
        More = 3,
    }
}

wire_enum16! {
    /// `RECORDS_STATUS` (§2.2.1.2.6).
    RecordsStatus, "RECORDS_STATUS" {
        /// `RECORDS_STATUS_DONE`.
        Done = 0,
        /// `RECORDS_STATUS_MORE`.
        More = 1,
    }
}

wire_enum16! {
    /// `VERSION_REQUEST_TYPE` (§2.2.1.2.7).
    VersionRequestType, "VERSION_REQUEST_TYPE" {
        /// `REQUEST_NORMAL_SYNC`.
        NormalSync = 0,
        /// `REQUEST_SLOW_SYNC`.
        SlowSync = 1,
        /// `REQUEST_SUBORDINATE_SYNC`.
        SubordinateSync = 2,
    }
}

wire_enum16! {
    /// `VERSION_CHANGE_TYPE` (§2.2.1.2.8).
    VersionChangeType, "VERSION_CHANGE_TYPE" {
        /// `CHANGE_NOTIFY`.
        Notify = 0,
        /// `CHANGE_ALL`.
        All = 2,
    }
}

wire_enum16! {
    /// `FRS_REQUESTED_STAGING_POLICY` (§2.2.1.2.9).
    StagingPolicy, "FRS_REQUESTED_STAGING_POLICY" {
        /// `SERVER_DEFAULT`.
        ServerDefault = 0,
        /// `STAGING_REQUIRED`.
        StagingRequired = 1,
        /// `RESTAGING_REQUIRED`.
        RestagingRequired = 2,
    }
}

/// `FRS_VERSION_VECTOR` (§2.2.1.4.1): versions `low+1..=high` of database
/// `db_guid`. 32 bytes, aligned to 8.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct VersionVector {
    /// `dbGuid`.
    pub db_guid: Guid,
    /// `low`.
    pub low: u64,
    /// `high`.
    pub high: u64,
}

impl VersionVector {
    /// Size on the wire.
    pub const WIRE_SIZE: usize = 32;
}

impl NdrCodec for VersionVector {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.align(8);
        w.guid(&self.db_guid);
        w.u64(self.low);
        w.u64(self.high);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.align(8)?;
        Ok(VersionVector { db_guid: r.guid()?, low: r.u64()?, high: r.u64()? })
    }
}

/// `SYSTEMTIME` ([MS-DTYP] §2.3.13), the `EPOQUE` type (§2.2.1.3.6): eight
/// `WORD`s, aligned to 2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SystemTime {
    /// `wYear`.
    pub year: u16,
    /// `wMonth`.
    pub month: u16,
    /// `wDayOfWeek`.
    pub day_of_week: u16,
    /// `wDay`.
    pub day: u16,
    /// `wHour`.
    pub hour: u16,
    /// `wMinute`.
    pub minute: u16,
    /// `wSecond`.
    pub second: u16,
    /// `wMilliseconds`.
    pub milliseconds: u16,
}

impl NdrCodec for SystemTime {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        for v in
            [self.year, self.month, self.day_of_week, self.day, self.hour, self.minute, self.second, self.milliseconds]
        {
            w.u16(v);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(SystemTime {
            year: r.u16()?,
            month: r.u16()?,
            day_of_week: r.u16()?,
            day: r.u16()?,
            hour: r.u16()?,
            minute: r.u16()?,
            second: r.u16()?,
            milliseconds: r.u16()?,
        })
    }
}

/// `FRS_EPOQUE_VECTOR` (§2.2.1.4.2): a GUID and a `SYSTEMTIME`; 32 bytes,
/// aligned to 4.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EpoqueVector {
    /// `machine`.
    pub machine: Guid,
    /// `epoque`.
    pub epoque: SystemTime,
}

impl EpoqueVector {
    /// Size on the wire.
    pub const WIRE_SIZE: usize = 32;
}

impl NdrCodec for EpoqueVector {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.guid(&self.machine);
        self.epoque.write(w);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(EpoqueVector { machine: r.guid()?, epoque: SystemTime::read(r)? })
    }
}

/// `FRS_ID_GVSN` (§2.2.1.4.3): a UID and a GVSN; 48 bytes, aligned to 8.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct IdGvsn {
    /// `uidDbGuid`.
    pub uid_db_guid: Guid,
    /// `uidVersion`.
    pub uid_version: u64,
    /// `gvsnDbGuid`.
    pub gvsn_db_guid: Guid,
    /// `gvsnVersion`.
    pub gvsn_version: u64,
}

impl NdrCodec for IdGvsn {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.align(8);
        w.guid(&self.uid_db_guid);
        w.u64(self.uid_version);
        w.guid(&self.gvsn_db_guid);
        w.u64(self.gvsn_version);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.align(8)?;
        Ok(IdGvsn { uid_db_guid: r.guid()?, uid_version: r.u64()?, gvsn_db_guid: r.guid()?, gvsn_version: r.u64()? })
    }
}

/// `FRS_UPDATE` (§2.2.1.4.4): the metadata of one file version. Aligned to
/// 8; `name` is `[string] WCHAR name[261]`, i.e. an NDR *varying* array
/// (offset 0, actual count with the NUL, UTF-16LE units) placed inline at
/// offset 160, followed by `flags` aligned to 4.
///
/// `present`/`nameConflict` are `long`s: any non-zero value reads as TRUE.
/// Names longer than 260 units are encoded as given but every decoder
/// (ours included) rejects them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Update {
    /// `present`: the file exists (FALSE = tombstone).
    pub present: bool,
    /// `nameConflict`: the file lost a name conflict.
    pub name_conflict: bool,
    /// `attributes`: the file attributes.
    pub attributes: u32,
    /// `fence` (FILETIME).
    pub fence: u64,
    /// `clock` (FILETIME).
    pub clock: u64,
    /// `createTime` (FILETIME).
    pub create_time: u64,
    /// `contentSetId`: the replicated folder.
    pub content_set_id: Guid,
    /// `hash`: SHA-1 of the file's marshaled data.
    pub hash: [u8; CONFIG_FILEHASH_DATASIZE],
    /// `rdcSimilarity`.
    pub rdc_similarity: [u8; CONFIG_RDC_SIMILARITY_DATASIZE],
    /// `uidDbGuid`.
    pub uid_db_guid: Guid,
    /// `uidVersion`.
    pub uid_version: u64,
    /// `gvsnDbGuid`.
    pub gvsn_db_guid: Guid,
    /// `gvsnVersion`.
    pub gvsn_version: u64,
    /// `parentDbGuid`.
    pub parent_db_guid: Guid,
    /// `parentVersion`.
    pub parent_version: u64,
    /// `name` (without the NUL).
    pub name: String,
    /// `flags` (`FRS_UPDATE_FLAG_*`).
    pub flags: u32,
}

impl Update {
    /// Smallest encoding (empty name): 160 fixed bytes, 8 of varying-array
    /// header, the NUL, padding, `flags`.
    pub const MIN_WIRE_SIZE: usize = 176;
}

impl NdrCodec for Update {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.align(8);
        w.bool32(self.present);
        w.bool32(self.name_conflict);
        w.u32(self.attributes);
        w.filetime(self.fence);
        w.filetime(self.clock);
        w.filetime(self.create_time);
        w.guid(&self.content_set_id);
        w.bytes(&self.hash);
        w.bytes(&self.rdc_similarity);
        w.guid(&self.uid_db_guid);
        w.u64(self.uid_version);
        w.guid(&self.gvsn_db_guid);
        w.u64(self.gvsn_version);
        w.guid(&self.parent_db_guid);
        w.u64(self.parent_version);
        w.varying_string(&self.name);
        w.u32(self.flags);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.align(8)?;
        Ok(Update {
            present: r.bool32()?,
            name_conflict: r.bool32()?,
            attributes: r.u32()?,
            fence: r.filetime()?,
            clock: r.filetime()?,
            create_time: r.filetime()?,
            content_set_id: r.guid()?,
            hash: r.array()?,
            rdc_similarity: r.array()?,
            uid_db_guid: r.guid()?,
            uid_version: r.u64()?,
            gvsn_db_guid: r.guid()?,
            gvsn_version: r.u64()?,
            parent_db_guid: r.guid()?,
            parent_version: r.u64()?,
            name: r.varying_string("FRS_UPDATE.name", FRS_UPDATE_NAME_MAX)?,
            flags: r.u32()?,
        })
    }
}

/// `FRS_UPDATE_CANCEL_DATA` (§2.2.1.4.5), the argument of UpdateCancel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UpdateCancelData {
    /// `blockingUpdate`.
    pub blocking_update: Update,
    /// `contentSetId`.
    pub content_set_id: Guid,
    /// `gvsnDatabaseId`.
    pub gvsn_database_id: Guid,
    /// `uidDatabaseId`.
    pub uid_database_id: Guid,
    /// `parentDatabaseId`.
    pub parent_database_id: Guid,
    /// `gvsnVersion`.
    pub gvsn_version: u64,
    /// `uidVersion`.
    pub uid_version: u64,
    /// `parentVersion`.
    pub parent_version: u64,
    /// `cancelType`.
    pub cancel_type: u32,
    /// `isUidValid`.
    pub is_uid_valid: bool,
    /// `isParentUidValid`.
    pub is_parent_uid_valid: bool,
    /// `isBlockerValid`.
    pub is_blocker_valid: bool,
}

impl NdrCodec for UpdateCancelData {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.align(8);
        self.blocking_update.write(w);
        w.guid(&self.content_set_id);
        w.guid(&self.gvsn_database_id);
        w.guid(&self.uid_database_id);
        w.guid(&self.parent_database_id);
        w.u64(self.gvsn_version);
        w.u64(self.uid_version);
        w.u64(self.parent_version);
        w.u32(self.cancel_type);
        w.bool32(self.is_uid_valid);
        w.bool32(self.is_parent_uid_valid);
        w.bool32(self.is_blocker_valid);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.align(8)?;
        Ok(UpdateCancelData {
            blocking_update: Update::read(r)?,
            content_set_id: r.guid()?,
            gvsn_database_id: r.guid()?,
            uid_database_id: r.guid()?,
            parent_database_id: r.guid()?,
            gvsn_version: r.u64()?,
            uid_version: r.u64()?,
            parent_version: r.u64()?,
            cancel_type: r.u32()?,
            is_uid_valid: r.bool32()?,
            is_parent_uid_valid: r.bool32()?,
            is_blocker_valid: r.bool32()?,
        })
    }
}

/// `FRS_RDC_SOURCE_NEED` (§2.2.1.4.6): 16 bytes, aligned to 8.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RdcSourceNeed {
    /// `needOffset`.
    pub need_offset: u64,
    /// `needSize`.
    pub need_size: u64,
}

impl NdrCodec for RdcSourceNeed {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.u64(self.need_offset);
        w.u64(self.need_size);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(RdcSourceNeed { need_offset: r.u64()?, need_size: r.u64()? })
    }
}

/// `FRS_RDC_PARAMETERS_FILTERMAX` (§2.2.1.4.7), with its `[range]`s
/// checked on decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RdcParametersFilterMax {
    /// `horizonSize`, 128..=16384.
    pub horizon_size: u16,
    /// `windowSize`, 2..=96.
    pub window_size: u16,
}

/// `FRS_RDC_PARAMETERS_FILTERPOINT` (§2.2.1.4.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RdcParametersFilterPoint {
    /// `minChunkSize`.
    pub min_chunk_size: u16,
    /// `maxChunkSize`.
    pub max_chunk_size: u16,
}

/// `FRS_RDC_PARAMETERS_GENERIC` (§2.2.1.4.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RdcParametersGeneric {
    /// `chunkerType`.
    pub chunker_type: u16,
    /// `chunkerParameters`.
    pub chunker_parameters: [u8; 64],
}

/// `FRS_RDC_PARAMETERS` (§2.2.1.4.10): `unsigned short
/// rdcChunkerAlgorithm` then the non-encapsulated union switched on it.
/// NDR20 repeats the discriminant (as a `short`) at the start of the union,
/// so the wire is `u16 algorithm, u16 discriminant, arm`, aligned to 2. A
/// discriminant that differs from the algorithm, or `RDC_MAXALGORITHM`
/// (no arm), is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RdcParameters {
    /// `RDC_FILTERGENERIC`.
    Generic(RdcParametersGeneric),
    /// `RDC_FILTERMAX`.
    FilterMax(RdcParametersFilterMax),
    /// `RDC_FILTERPOINT`.
    FilterPoint(RdcParametersFilterPoint),
}

impl RdcParameters {
    /// Smallest encoding (FilterMax/FilterPoint).
    pub const MIN_WIRE_SIZE: usize = 8;

    /// The `rdcChunkerAlgorithm` for this arm.
    pub fn algorithm(&self) -> RdcChunkerAlgorithm {
        match self {
            RdcParameters::Generic(_) => RdcChunkerAlgorithm::FilterGeneric,
            RdcParameters::FilterMax(_) => RdcChunkerAlgorithm::FilterMax,
            RdcParameters::FilterPoint(_) => RdcChunkerAlgorithm::FilterPoint,
        }
    }
}

impl NdrCodec for RdcParameters {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        let alg = self.algorithm().to_wire();
        w.u16(alg);
        w.u16(alg);
        match self {
            RdcParameters::Generic(g) => {
                w.u16(g.chunker_type);
                w.bytes(&g.chunker_parameters);
            }
            RdcParameters::FilterMax(m) => {
                w.u16(m.horizon_size);
                w.u16(m.window_size);
            }
            RdcParameters::FilterPoint(p) => {
                w.u16(p.min_chunk_size);
                w.u16(p.max_chunk_size);
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let alg = r.u16()?;
        let disc = r.u16()?;
        if disc != alg {
            return Err(Error::BadSwitch { what: "FRS_RDC_PARAMETERS.u", expected: alg.into(), found: disc.into() });
        }
        match RdcChunkerAlgorithm::from_wire(alg)? {
            RdcChunkerAlgorithm::FilterGeneric => Ok(RdcParameters::Generic(RdcParametersGeneric {
                chunker_type: r.u16()?,
                chunker_parameters: r.array()?,
            })),
            RdcChunkerAlgorithm::FilterMax => {
                let horizon_size = r.u16()?;
                let window_size = r.u16()?;
                range("FRS_RDC_PARAMETERS_FILTERMAX.horizonSize", horizon_size.into(), 128, 16384)?;
                range("FRS_RDC_PARAMETERS_FILTERMAX.windowSize", window_size.into(), 2, 96)?;
                Ok(RdcParameters::FilterMax(RdcParametersFilterMax { horizon_size, window_size }))
            }
            RdcChunkerAlgorithm::FilterPoint => Ok(RdcParameters::FilterPoint(RdcParametersFilterPoint {
                min_chunk_size: r.u16()?,
                max_chunk_size: r.u16()?,
            })),
            RdcChunkerAlgorithm::MaxAlgorithm => {
                Err(Error::BadSwitch { what: "FRS_RDC_PARAMETERS.u", expected: alg.into(), found: disc.into() })
            }
        }
    }
}

/// Checks a `[range(min, max)]`.
pub(crate) fn range(what: &'static str, value: u64, min: u64, max: u64) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::OutOfRange { what, value, min, max })
    }
}

/// `FRS_RDC_FILEINFO` (§2.2.1.4.11): a conformant structure — `u32
/// max_count` (= `rdcSignatureLevels`) comes first, then the structure
/// aligned to 8, the `FRS_RDC_PARAMETERS` array last. `rdcSignatureLevels`
/// is `rdc_filter_parameters.len()` (0..=8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RdcFileInfo {
    /// `onDiskFileSize`.
    pub on_disk_file_size: u64,
    /// `fileSizeEstimate`.
    pub file_size_estimate: u64,
    /// `rdcVersion` (`CONFIG_RDC_VERSION`).
    pub rdc_version: u16,
    /// `rdcMinimumCompatibleVersion`.
    pub rdc_minimum_compatible_version: u16,
    /// `compressionAlgorithm`.
    pub compression_algorithm: RdcFileCompressionType,
    /// `rdcFilterParameters`, one per signature level.
    pub rdc_filter_parameters: Vec<RdcParameters>,
}

impl NdrCodec for RdcFileInfo {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        let levels = self.rdc_filter_parameters.len() as u32;
        w.u32(levels);
        w.align(8);
        w.u64(self.on_disk_file_size);
        w.u64(self.file_size_estimate);
        w.u16(self.rdc_version);
        w.u16(self.rdc_minimum_compatible_version);
        w.u8(levels as u8);
        self.compression_algorithm.write(w);
        for p in &self.rdc_filter_parameters {
            p.write(w);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let max_count = r.u32()?;
        r.align(8)?;
        let on_disk_file_size = r.u64()?;
        let file_size_estimate = r.u64()?;
        let rdc_version = r.u16()?;
        let rdc_minimum_compatible_version = r.u16()?;
        let levels = r.u8()?;
        range("FRS_RDC_FILEINFO.rdcSignatureLevels", levels.into(), 0, CONFIG_RDC_MAX_LEVELS.into())?;
        if max_count != u32::from(levels) {
            return Err(Error::CountMismatch {
                what: "FRS_RDC_FILEINFO.rdcFilterParameters",
                expected: levels.into(),
                found: max_count.into(),
            });
        }
        let compression_algorithm = RdcFileCompressionType::read(r)?;
        let rdc_filter_parameters = r.elements(
            "FRS_RDC_FILEINFO.rdcFilterParameters",
            max_count,
            RdcParameters::MIN_WIRE_SIZE,
            RdcParameters::read,
        )?;
        Ok(RdcFileInfo {
            on_disk_file_size,
            file_size_estimate,
            rdc_version,
            rdc_minimum_compatible_version,
            compression_algorithm,
            rdc_filter_parameters,
        })
    }
}

/// `FRS_ASYNC_VERSION_VECTOR_RESPONSE` (§2.2.1.4.12). The two arrays are
/// embedded unique pointers: the counts and referent ids sit in the
/// structure, the arrays (conformant, `max_count` = the count) follow the
/// containing top-level parameter. `None` is a null pointer, encoded with a
/// count of 0; a null pointer with a non-zero count decodes as `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsyncVersionVectorResponse {
    /// `vvGeneration`.
    pub vv_generation: u64,
    /// `versionVector` (`versionVectorCount` entries).
    pub version_vector: Option<Vec<VersionVector>>,
    /// `epoqueVector` (`epoqueVectorCount` entries).
    pub epoque_vector: Option<Vec<EpoqueVector>>,
}

impl NdrCodec for AsyncVersionVectorResponse {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.u64(self.vv_generation);
        w.u32(self.version_vector.as_ref().map_or(0, |v| v.len() as u32));
        w.unique_ptr(self.version_vector.as_deref(), |w, v| w.conformant_array(v, |w, e| e.write(w)));
        w.u32(self.epoque_vector.as_ref().map_or(0, |v| v.len() as u32));
        w.unique_ptr(self.epoque_vector.as_deref(), |w, v| w.conformant_array(v, |w, e| e.write(w)));
    }

    /// Reads the scalars *and* the deferred arrays: correct wherever this
    /// structure is the last scalar of its top-level parameter, which is the
    /// only way MS-FRS2 uses it (inside FRS_ASYNC_RESPONSE_CONTEXT).
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let vv_generation = r.u64()?;
        let vv_count = r.u32()?;
        let vv_ptr = r.unique_ptr()?;
        let ep_count = r.u32()?;
        let ep_ptr = r.unique_ptr()?;
        let version_vector = match vv_ptr {
            None => None,
            Some(_) => Some(sized_array(
                r,
                "FRS_ASYNC_VERSION_VECTOR_RESPONSE.versionVector",
                vv_count,
                VersionVector::WIRE_SIZE,
                VersionVector::read,
            )?),
        };
        let epoque_vector = match ep_ptr {
            None => None,
            Some(_) => Some(sized_array(
                r,
                "FRS_ASYNC_VERSION_VECTOR_RESPONSE.epoqueVector",
                ep_count,
                EpoqueVector::WIRE_SIZE,
                EpoqueVector::read,
            )?),
        };
        Ok(AsyncVersionVectorResponse { vv_generation, version_vector, epoque_vector })
    }
}

/// A conformant array whose `max_count` must equal `expected` (`size_is`).
pub(crate) fn sized_array<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    expected: u32,
    min_size: usize,
    f: impl FnMut(&mut Reader<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = r.u32()?;
    if n != expected {
        return Err(Error::CountMismatch { what, expected: expected.into(), found: n.into() });
    }
    r.elements(what, n, min_size, f)
}

/// `FRS_ASYNC_RESPONSE_CONTEXT` (§2.2.1.4.13): what AsyncPoll returns.
/// Aligned to 8.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsyncResponseContext {
    /// `sequenceNumber` of the RequestVersionVector call answered.
    pub sequence_number: u32,
    /// `status` (a Win32 error).
    pub status: u32,
    /// `result`.
    pub result: AsyncVersionVectorResponse,
}

impl NdrCodec for AsyncResponseContext {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.align(8);
        w.u32(self.sequence_number);
        w.u32(self.status);
        self.result.write(w);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.align(8)?;
        Ok(AsyncResponseContext {
            sequence_number: r.u32()?,
            status: r.u32()?,
            result: AsyncVersionVectorResponse::read(r)?,
        })
    }
}

/// `PFRS_SERVER_CONTEXT` (§2.2.1.4.14): an RPC context handle, 20 bytes on
/// the wire (`u32 attributes`, GUID), aligned to 4.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ContextHandle {
    /// `context_handle_attributes` (0).
    pub attributes: u32,
    /// `context_handle_uuid`; all-zero with attributes 0 is the null handle.
    pub uuid: Guid,
}

impl ContextHandle {
    /// Whether this is the null context handle.
    pub fn is_null(&self) -> bool {
        self.attributes == 0 && self.uuid == Guid::NIL
    }
}

impl NdrCodec for ContextHandle {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        w.u32(self.attributes);
        w.guid(&self.uuid);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ContextHandle { attributes: r.u32()?, uuid: r.guid()? })
    }
}
