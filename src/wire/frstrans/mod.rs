//! The FrsTransport interface (MS-FRS2, UUID
//! `897e2e5f-93f3-4376-9c9c-fd2277495c27` v1.0): structures
//! ([`types`], §2.2.1), per-method stub data ([`messages`], §3.2.4.1), and
//! [`Request`]/[`Response`] dispatch by opnum.

pub mod convert;
pub mod messages;
pub mod types;

#[cfg(test)]
mod tests;

pub use messages::*;
pub use types::*;

use crate::wire::ndr::{Error, Guid, Result};

/// The interface UUID (§2.1).
pub const INTERFACE_UUID: &str = "897e2e5f-93f3-4376-9c9c-fd2277495c27";
/// The interface version (§2.1): 1.0.
pub const INTERFACE_VERSION: (u16, u16) = (1, 0);

/// The interface UUID as a [`Guid`].
pub fn interface_guid() -> Guid {
    Guid::from_fields(0x897e_2e5f, 0x93f3, 0x4376, [0x9c, 0x9c, 0xfd, 0x22, 0x77, 0x49, 0x5c, 0x27])
}

/// The FrsTransport syntax (interface UUID, v1.0) for DCE/RPC binds.
pub fn frstrans_syntax() -> crate::wire::dcerpc::SyntaxId {
    crate::wire::dcerpc::SyntaxId::new(interface_guid(), INTERFACE_VERSION.0, INTERFACE_VERSION.1)
}

/// The protocol version this server implements (Windows Server 2012 R2).
pub const OUR_PROTOCOL_VERSION: u32 = protocol_version::WINBLUE_SERVER;

/// The FRS return values: one table, the engine's (it classifies them).
pub use crate::engine::session::frs_error;


/// Whether a downstream partner's protocol version can talk to us
/// (§3.2.4.1.2): same major version (5), and not the undefined 5.1.
pub fn version_compatible(downstream: u32) -> bool {
    downstream >> 16 == OUR_PROTOCOL_VERSION >> 16 && downstream != 0x0005_0001
}

/// Method numbers (§3.2.4.1).
pub mod opnum {
    /// CheckConnectivity.
    pub const CHECK_CONNECTIVITY: u16 = 0;
    /// EstablishConnection.
    pub const ESTABLISH_CONNECTION: u16 = 1;
    /// EstablishSession.
    pub const ESTABLISH_SESSION: u16 = 2;
    /// RequestUpdates.
    pub const REQUEST_UPDATES: u16 = 3;
    /// RequestVersionVector.
    pub const REQUEST_VERSION_VECTOR: u16 = 4;
    /// AsyncPoll.
    pub const ASYNC_POLL: u16 = 5;
    /// RequestRecords.
    pub const REQUEST_RECORDS: u16 = 6;
    /// UpdateCancel.
    pub const UPDATE_CANCEL: u16 = 7;
    /// RawGetFileData.
    pub const RAW_GET_FILE_DATA: u16 = 8;
    /// RdcGetSignatures.
    pub const RDC_GET_SIGNATURES: u16 = 9;
    /// RdcPushSourceNeeds.
    pub const RDC_PUSH_SOURCE_NEEDS: u16 = 10;
    /// RdcGetFileData.
    pub const RDC_GET_FILE_DATA: u16 = 11;
    /// RdcClose.
    pub const RDC_CLOSE: u16 = 12;
    /// InitializeFileTransferAsync.
    pub const INITIALIZE_FILE_TRANSFER_ASYNC: u16 = 13;
    /// Opnum14NotUsedOnWire.
    pub const OPNUM14_NOT_USED_ON_WIRE: u16 = 14;
    /// RawGetFileDataAsync.
    pub const RAW_GET_FILE_DATA_ASYNC: u16 = 15;
    /// RdcGetFileDataAsync.
    pub const RDC_GET_FILE_DATA_ASYNC: u16 = 16;
    /// RdcFileDataTransferKeepAlive.
    pub const RDC_FILE_DATA_TRANSFER_KEEP_ALIVE: u16 = 17;
}

macro_rules! dispatch {
    ($(#[$m:meta])* $name:ident, $dir:literal { $($op:literal => $v:ident($t:ty)),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $(
                #[doc = concat!("Opnum ", stringify!($op), ", `", stringify!($v), "` ", $dir, ".")]
                $v($t),
            )*
        }

        impl $name {
            /// The method's opnum.
            pub fn opnum(&self) -> u16 {
                match self {
                    $($name::$v(_) => $op,)*
                }
            }

            /// The method's name as the spec spells it.
            pub fn method_name(&self) -> &'static str {
                match self {
                    $($name::$v(_) => stringify!($v),)*
                }
            }

            /// Decodes the stub data of method `opnum`; the whole of
            /// `bytes` must be used.
            pub fn decode(opnum: u16, bytes: &[u8]) -> Result<Self> {
                match opnum {
                    $($op => Ok($name::$v(<$t as NdrCodec>::decode(bytes)?)),)*
                    _ => Err(Error::UnknownOpnum(opnum)),
                }
            }

            /// Appends the stub data to `out`.
            pub fn encode(&self, out: &mut Vec<u8>) {
                match self {
                    $($name::$v(m) => m.encode(out),)*
                }
            }

            /// The stub data as a new buffer.
            pub fn to_bytes(&self) -> Vec<u8> {
                let mut out = Vec::new();
                self.encode(&mut out);
                out
            }
        }
    };
}

dispatch! {
    /// The `[in]` stub data of any FrsTransport method (§3.2.4.1). Messages
    /// carrying an FRS_UPDATE are boxed.
    Request, "request" {
        0 => CheckConnectivity(CheckConnectivityRequest),
        1 => EstablishConnection(EstablishConnectionRequest),
        2 => EstablishSession(EstablishSessionRequest),
        3 => RequestUpdates(RequestUpdatesRequest),
        4 => RequestVersionVector(RequestVersionVectorRequest),
        5 => AsyncPoll(AsyncPollRequest),
        6 => RequestRecords(RequestRecordsRequest),
        7 => UpdateCancel(Box<UpdateCancelRequest>),
        8 => RawGetFileData(RawGetFileDataRequest),
        9 => RdcGetSignatures(RdcGetSignaturesRequest),
        10 => RdcPushSourceNeeds(RdcPushSourceNeedsRequest),
        11 => RdcGetFileData(RdcGetFileDataRequest),
        12 => RdcClose(RdcCloseRequest),
        13 => InitializeFileTransferAsync(Box<InitializeFileTransferAsyncRequest>),
        14 => Opnum14NotUsedOnWire(Opnum14NotUsedOnWireRequest),
        15 => RawGetFileDataAsync(RawGetFileDataAsyncRequest),
        16 => RdcGetFileDataAsync(RdcGetFileDataAsyncRequest),
        17 => RdcFileDataTransferKeepAlive(RdcFileDataTransferKeepAliveRequest),
    }
}

dispatch! {
    /// The `[out]` stub data of any FrsTransport method (§3.2.4.1); each
    /// ends with the method's `DWORD` return value. Messages carrying an
    /// FRS_UPDATE are boxed.
    Response, "response" {
        0 => CheckConnectivity(CheckConnectivityResponse),
        1 => EstablishConnection(EstablishConnectionResponse),
        2 => EstablishSession(EstablishSessionResponse),
        3 => RequestUpdates(RequestUpdatesResponse),
        4 => RequestVersionVector(RequestVersionVectorResponse),
        5 => AsyncPoll(AsyncPollResponse),
        6 => RequestRecords(RequestRecordsResponse),
        7 => UpdateCancel(UpdateCancelResponse),
        8 => RawGetFileData(RawGetFileDataResponse),
        9 => RdcGetSignatures(RdcGetSignaturesResponse),
        10 => RdcPushSourceNeeds(RdcPushSourceNeedsResponse),
        11 => RdcGetFileData(RdcGetFileDataResponse),
        12 => RdcClose(RdcCloseResponse),
        13 => InitializeFileTransferAsync(Box<InitializeFileTransferAsyncResponse>),
        14 => Opnum14NotUsedOnWire(Opnum14NotUsedOnWireResponse),
        15 => RawGetFileDataAsync(RawGetFileDataAsyncResponse),
        16 => RdcGetFileDataAsync(RdcGetFileDataAsyncResponse),
        17 => RdcFileDataTransferKeepAlive(RdcFileDataTransferKeepAliveResponse),
    }
}

impl Response {
    /// The method's return value (the `DWORD` every response ends with).
    pub fn status(&self) -> u32 {
        match self {
            Response::CheckConnectivity(m)
            | Response::EstablishSession(m)
            | Response::RequestVersionVector(m)
            | Response::UpdateCancel(m)
            | Response::RdcPushSourceNeeds(m)
            | Response::Opnum14NotUsedOnWire(m)
            | Response::RdcFileDataTransferKeepAlive(m) => m.status,
            Response::EstablishConnection(m) => m.status,
            Response::RequestUpdates(m) => m.status,
            Response::AsyncPoll(m) => m.status,
            Response::RequestRecords(m) => m.status,
            Response::RawGetFileData(m) => m.status,
            Response::RdcGetSignatures(m) => m.status,
            Response::RdcGetFileData(m) => m.status,
            Response::RdcClose(m) => m.status,
            Response::InitializeFileTransferAsync(m) => m.status,
            Response::RawGetFileDataAsync(m) | Response::RdcGetFileDataAsync(m) => m.status,
        }
    }
}
