//! The security verification trailer (MS-RPCE §2.2.2.13): commands a
//! client appends to the stub data of a request, after 4-byte padding, so
//! that the server can verify header fields that the verifier does not
//! cover. Windows clients send it at packet level and above; Samba's
//! server checks it (`dcesrv_check_verification_trailer`) and its client
//! sends it (`dcerpc_request_prepare_vt`). Layout (as Samba's dcerpc.idl):
//!
//! ```text
//! pad to 4 | magic 8a e3 13 71 02 f4 36 71 | { u16 command, u16 length, data }…
//! ```
//!
//! with `command` = enum (low 14 bits) | `0x4000` on the last command |
//! `0x8000` must-process. BITMASK1 carries a `u32`, PCONTEXT the abstract
//! and transfer syntaxes (40 bytes), HEADER2 `ptype, 0, 0u16, drep[4],
//! call_id, context_id, opnum` (16 bytes).

use super::pdu::{SyntaxId, DREP_LE};
use crate::wire::ndr::{Guid, Reader};

/// The trailer's magic (`DCERPC_SEC_VT_MAGIC`).
pub const MAGIC: [u8; 8] = [0x8a, 0xe3, 0x13, 0x71, 0x02, 0xf4, 0x36, 0x71];
/// Only the last 1024 bytes of the stub are scanned for the magic.
pub const MAX_SIZE: usize = 1024;
/// `SEC_VT_COMMAND_END`.
pub const COMMAND_END: u16 = 0x4000;
/// `SEC_VT_MUST_PROCESS_COMMAND`.
pub const MUST_PROCESS: u16 = 0x8000;
/// Mask of the command number.
pub const COMMAND_ENUM: u16 = 0x3fff;
/// BITMASK1 bit: the client supports header signing.
pub const CLIENT_SUPPORTS_HEADER_SIGNING: u32 = 0x0000_0001;

/// The HEADER2 values: the request's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header2 {
    /// Packet type (0, request).
    pub ptype: u8,
    /// Data representation.
    pub drep: [u8; 4],
    /// Call id.
    pub call_id: u32,
    /// Presentation context.
    pub context_id: u16,
    /// Operation number.
    pub opnum: u16,
}

impl Header2 {
    /// The values of a little-endian request.
    pub fn request(call_id: u32, context_id: u16, opnum: u16) -> Self {
        Header2 { ptype: 0, drep: DREP_LE, call_id, context_id, opnum }
    }
}

/// One command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `SEC_VT_COMMAND_BITMASK_1` (1).
    Bitmask1(u32),
    /// `SEC_VT_COMMAND_PCONTEXT` (2).
    Pcontext {
        /// The interface.
        abstract_syntax: SyntaxId,
        /// The transfer syntax.
        transfer_syntax: SyntaxId,
    },
    /// `SEC_VT_COMMAND_HEADER2` (3).
    Header2(Header2),
    /// Any other command, kept raw.
    Unknown {
        /// Command number (without flags).
        command: u16,
        /// Its data.
        data: Vec<u8>,
    },
}

/// A command with its must-process flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VtCommand {
    /// `SEC_VT_MUST_PROCESS_COMMAND`.
    pub must_process: bool,
    /// The command.
    pub command: Command,
}

/// A verification trailer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerificationTrailer {
    /// The commands, in order (the last one gets `COMMAND_END`).
    pub commands: Vec<VtCommand>,
}

fn syntax(r: &mut Reader<'_>) -> Option<SyntaxId> {
    let uuid: Guid = r.guid().ok()?;
    let version = r.u32().ok()?;
    Some(SyntaxId { uuid, version })
}

impl VerificationTrailer {
    /// Appends the trailer to `stub` (zero padding to 4, magic, commands).
    /// Nothing is appended for an empty trailer.
    pub fn append_to(&self, stub: &mut Vec<u8>) {
        if self.commands.is_empty() {
            return;
        }
        while stub.len() % 4 != 0 {
            stub.push(0);
        }
        stub.extend_from_slice(&MAGIC);
        let n = self.commands.len();
        for (i, c) in self.commands.iter().enumerate() {
            let mut data = Vec::new();
            let num = match &c.command {
                Command::Bitmask1(b) => {
                    data.extend_from_slice(&b.to_le_bytes());
                    1
                }
                Command::Pcontext { abstract_syntax, transfer_syntax } => {
                    for s in [abstract_syntax, transfer_syntax] {
                        data.extend_from_slice(&s.uuid.0);
                        data.extend_from_slice(&s.version.to_le_bytes());
                    }
                    2
                }
                Command::Header2(h) => {
                    data.extend_from_slice(&[h.ptype, 0, 0, 0]);
                    data.extend_from_slice(&h.drep);
                    data.extend_from_slice(&h.call_id.to_le_bytes());
                    data.extend_from_slice(&h.context_id.to_le_bytes());
                    data.extend_from_slice(&h.opnum.to_le_bytes());
                    3
                }
                Command::Unknown { command, data: d } => {
                    data.extend_from_slice(d);
                    *command & COMMAND_ENUM
                }
            };
            let mut cmd = num;
            if c.must_process {
                cmd |= MUST_PROCESS;
            }
            if i + 1 == n {
                cmd |= COMMAND_END;
            }
            stub.extend_from_slice(&cmd.to_le_bytes());
            stub.extend_from_slice(&(data.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
            stub.extend_from_slice(&data[..data.len().min(usize::from(u16::MAX))]);
        }
    }

    /// Finds and removes a trailer as Samba's
    /// `ndr_pop_dcerpc_sec_verification_trailer` does: the last 4-aligned
    /// magic within the last 1024 bytes; if what follows does not parse
    /// (or leaves more than 16 bytes), the magic is taken to be stub data.
    /// Returns the stub length without the trailer, and the trailer.
    pub fn pop(stub: &[u8]) -> (usize, Option<VerificationTrailer>) {
        if stub.len() < MAGIC.len() {
            return (stub.len(), None);
        }
        let mut ofs = (stub.len() - MAGIC.len()) & !3;
        let min_ofs = ofs.saturating_sub(MAX_SIZE);
        loop {
            if stub[ofs..ofs + MAGIC.len()] == MAGIC {
                return match Self::parse(&stub[ofs + MAGIC.len()..]) {
                    Some(t) => (ofs, Some(t)),
                    None => (stub.len(), None),
                };
            }
            if ofs <= min_ofs {
                return (stub.len(), None);
            }
            ofs -= 4;
        }
    }

    fn parse(b: &[u8]) -> Option<VerificationTrailer> {
        let mut r = Reader::new(b);
        let mut commands = Vec::new();
        loop {
            let cmd = r.u16().ok()?;
            let len = r.u16().ok()?;
            let data = r.bytes(usize::from(len)).ok()?;
            let mut d = Reader::new(&data);
            let must_process = cmd & MUST_PROCESS != 0;
            let command = match cmd & COMMAND_ENUM {
                1 => Command::Bitmask1(d.u32().ok()?),
                2 => Command::Pcontext { abstract_syntax: syntax(&mut d)?, transfer_syntax: syntax(&mut d)? },
                3 => {
                    let ptype = d.u8().ok()?;
                    d.u8().ok()?;
                    d.u16().ok()?;
                    let drep = d.array::<4>().ok()?;
                    let call_id = d.u32().ok()?;
                    let context_id = d.u16().ok()?;
                    let opnum = d.u16().ok()?;
                    Command::Header2(Header2 { ptype, drep, call_id, context_id, opnum })
                }
                n => {
                    d.bytes(data.len()).ok()?;
                    Command::Unknown { command: n, data: data.clone() }
                }
            };
            // NDR_SUBCONTEXT_NO_UNREAD_BYTES
            if d.remaining() != 0 {
                return None;
            }
            commands.push(VtCommand { must_process, command });
            if cmd & COMMAND_END != 0 {
                break;
            }
        }
        if r.remaining() > 16 {
            return None;
        }
        Some(VerificationTrailer { commands })
    }

    /// Checks the trailer as Samba's `dcerpc_sec_verification_trailer_check`:
    /// each command at most once, unknown commands 4-byte sized and not
    /// must-process, BITMASK1 not claiming header signing the bind did not
    /// offer, PCONTEXT and HEADER2 equal to the call's.
    pub fn check(&self, bitmask1: u32, pcontext: (SyntaxId, SyntaxId), header2: &Header2) -> bool {
        let mut seen = std::collections::HashSet::new();
        for c in &self.commands {
            let num = match &c.command {
                Command::Bitmask1(_) => 1,
                Command::Pcontext { .. } => 2,
                Command::Header2(_) => 3,
                Command::Unknown { command, .. } => *command,
            };
            if !seen.insert(num) {
                return false;
            }
            let ok = match &c.command {
                Command::Bitmask1(b) => {
                    b & CLIENT_SUPPORTS_HEADER_SIGNING == 0 || bitmask1 & CLIENT_SUPPORTS_HEADER_SIGNING != 0
                }
                Command::Pcontext { abstract_syntax, transfer_syntax } => {
                    (*abstract_syntax, *transfer_syntax) == pcontext
                }
                Command::Header2(h) => h == header2,
                Command::Unknown { data, .. } => data.len() % 4 == 0 && !c.must_process,
            };
            if !ok {
                return false;
            }
        }
        true
    }
}
