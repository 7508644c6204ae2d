//! Staged files (MS-FRS2 §3.2.4.1.14): how a DFS-R partner ships a file —
//! MS-BKUP streams marshaled, framed in FRSX/XBLO blocks and compressed
//! with LZ77+Huffman (MS-XCA). Sans-IO: no Samba, no sockets.
//!
//! - [`xpress`]: LZ77+Huffman decoder and encoder (MS-XCA §2.1-2.2).
//! - [`frsx`]: the `FRSX` signature and `XBLO` blocks around the marshaled
//!   bytes (MS-FRS2 §3.2.4.1.14.2), streaming reader and writer.
//! - [`marshal`]: the marshaled format (§3.2.4.1.14.1): metadata,
//!   security, reparse, MS-BKUP streams; streaming reader/writer, the
//!   DFS-R file hash.
//! - [`security_descriptor`]: self-relative descriptors, SDDL both ways.
//! - [`writer`]: the staged-file writer (metadata, SD, reparse, data or
//!   sparse blocks, streams → FRSX), over the caller's readers and writer.
//! - [`filetime`]: FILETIME ↔ ISO 8601, SystemTime → FILETIME.

pub mod filetime;
pub mod frsx;
pub mod marshal;
pub mod security_descriptor;
pub mod writer;
pub mod xpress;
