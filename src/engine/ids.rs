//! Identifiers of the DFS-R data model: database GUIDs, UIDs and GVSNs
//! (MS-FRS2 §2.2.1.4.4, §3.3.4.6.2).
//!
//! A file is named for life by its UID `(database GUID, version)` assigned by
//! the member that created it; each change of it is named by a GVSN
//! `(database GUID, version)` assigned by the member that made the change.
//! Both are ordered by the byte-wise order of the GUID, then the version
//! (§3.3.4.6.1, §3.3.4.6.2).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A GUID kept as its 16 bytes in wire order: the MS-DTYP §2.3.4.2 layout,
/// `Data1` (u32), `Data2` and `Data3` (u16) little-endian, then the 8 bytes
/// of `Data4`. This is also the in-memory layout on Windows.
///
/// Ordering (`Ord`) is the byte-wise unsigned left-to-right comparison of
/// those 16 bytes. MS-FRS2 §3.3.4.6.2 says GUIDs "are compared using a
/// lexicographic left-to-right comparison of each byte … memcmp"; `memcmp`
/// runs over the in-memory (= wire) layout, so the little-endian fields are
/// compared least significant byte first. This is *not* the order of the
/// textual form: `00000100-…` is smaller than `00000001-…`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Guid(pub [u8; 16]);

/// Why a textual GUID was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GuidParseError {
    /// Not the 8-4-4-4-12 layout (optionally in braces).
    #[error("GUID text {0:?} is not in the 8-4-4-4-12 form")]
    Layout(String),
    /// A character that is not a hexadecimal digit.
    #[error("GUID text {0:?} has a non-hexadecimal digit")]
    Digit(String),
}

impl Guid {
    /// The all-zero GUID (GUID_NULL).
    pub const NIL: Guid = Guid([0; 16]);

    /// Builds a GUID from its wire (MS-DTYP, little-endian fields) bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Guid(bytes)
    }

    /// A random (RFC 4122 version 4) GUID from 16 random bytes, which the
    /// caller reads at the edge ([`crate::random::new_guid`]).
    pub const fn from_random(mut b: [u8; 16]) -> Self {
        // Version 4 in data3's high nibble, variant 1 in data4[0]'s top bits.
        b[7] = (b[7] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Guid(b)
    }

    /// The wire (MS-DTYP, little-endian fields) bytes.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// Builds a GUID from its fields as written in text, e.g.
    /// `from_fields(0x897e2e5f, 0x93f3, 0x4376, [0x9c,0x9c,0xfd,0x22,0x77,0x49,0x5c,0x27])`.
    pub const fn from_fields(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Self {
        let a = data1.to_le_bytes();
        let b = data2.to_le_bytes();
        let c = data3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], data4[0], data4[1], data4[2], data4[3],
            data4[4], data4[5], data4[6], data4[7],
        ])
    }

    /// `Data1` as a number.
    pub fn data1(&self) -> u32 {
        u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    /// `Data2` as a number.
    pub fn data2(&self) -> u16 {
        u16::from_le_bytes([self.0[4], self.0[5]])
    }

    /// `Data3` as a number.
    pub fn data3(&self) -> u16 {
        u16::from_le_bytes([self.0[6], self.0[7]])
    }

    /// `Data4`, as in the text.
    pub fn data4(&self) -> [u8; 8] {
        let mut d = [0u8; 8];
        d.copy_from_slice(&self.0[8..]);
        d
    }

    /// True for GUID_NULL.
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// Byte-wise XOR, used for the UID of version-vector tombstones
    /// (§3.3.4.6.2: `uidDbGuid = XOR(folder GUID, m1)`).
    pub fn xor(&self, other: &Guid) -> Guid {
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.0[i] ^ other.0[i];
        }
        Guid(out)
    }
}

impl fmt::Display for Guid {
    /// Lowercase `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, no braces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.data4();
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.data1(),
            self.data2(),
            self.data3(),
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
            d[5],
            d[6],
            d[7]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl FromStr for Guid {
    type Err = GuidParseError;

    /// Accepts `8-4-4-4-12` hexadecimal, either case, with or without braces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let inner = match s.strip_prefix('{') {
            Some(rest) => rest
                .strip_suffix('}')
                .ok_or_else(|| GuidParseError::Layout(s.to_string()))?,
            None => s,
        };
        let bytes = inner.as_bytes();
        if bytes.len() != 36 {
            return Err(GuidParseError::Layout(s.to_string()));
        }
        let mut hex = [0u8; 32];
        let mut n = 0;
        for (i, &c) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(GuidParseError::Layout(s.to_string()));
                }
                continue;
            }
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(GuidParseError::Digit(s.to_string())),
            };
            hex[n] = v;
            n += 1;
        }
        // Text bytes in textual (big-endian field) order.
        let mut text = [0u8; 16];
        for (i, t) in text.iter_mut().enumerate() {
            *t = (hex[2 * i] << 4) | hex[2 * i + 1];
        }
        let data1 = u32::from_be_bytes([text[0], text[1], text[2], text[3]]);
        let data2 = u16::from_be_bytes([text[4], text[5]]);
        let data3 = u16::from_be_bytes([text[6], text[7]]);
        let mut data4 = [0u8; 8];
        data4.copy_from_slice(&text[8..]);
        Ok(Guid::from_fields(data1, data2, data3, data4))
    }
}

/// A version sequence number (VSN), unsigned 64-bit (§3.3.4.6.2).
pub type Vsn = u64;

/// Versions 0..=8 are reserved (§3.3.4.6.2 "Reserved UIDs"): version 1 is a
/// replicated-folder root, 2 a version-vector tombstone.
pub const RESERVED_VERSION_MAX: Vsn = 8;

/// The first version our allocator hands out (§3.3.4.6.2: files "MUST start
/// with at least version 9").
pub const FIRST_FREE_VERSION: Vsn = RESERVED_VERSION_MAX + 1;

/// The UID version of a replicated-folder root (§3.3.4.6.2).
pub const ROOT_VERSION: Vsn = 1;

/// The UID version of a version-vector tombstone (§3.3.4.6.2).
pub const VV_TOMBSTONE_VERSION: Vsn = 2;

/// True when `version` is in the reserved range 0..=8 (§3.3.4.6.2), so a
/// version allocator must never return it.
pub const fn is_reserved_version(version: Vsn) -> bool {
    version <= RESERVED_VERSION_MAX
}

/// A file's identity for life: the database that created it and the version
/// it got there (§2.2.1.4.4 `uidDbGuid`, `uidVersion`).
///
/// Ordered by GUID (byte-wise, see [`Guid`]) then version.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uid {
    /// The database GUID of the member that created the file.
    pub db: Guid,
    /// The VSN assigned on creation.
    pub version: Vsn,
}

impl Uid {
    /// A UID from its parts.
    pub const fn new(db: Guid, version: Vsn) -> Self {
        Uid { db, version }
    }

    /// The UID of a replicated-folder root: `(folder GUID, 1)` (§3.3.4.6.2).
    pub const fn root_of(folder: Guid) -> Self {
        Uid {
            db: folder,
            version: ROOT_VERSION,
        }
    }

    /// True when this is a replicated-folder root UID (version 1, the only
    /// use of that reserved version, §3.3.4.6.2).
    pub const fn is_root(&self) -> bool {
        self.version == ROOT_VERSION
    }

    /// The UID of the version-vector tombstone for database `m1` of a folder
    /// (§3.3.4.6.2): `(XOR(folder, m1), 2)`.
    pub fn vv_tombstone(folder: Guid, m1: Guid) -> Self {
        Uid {
            db: folder.xor(&m1),
            version: VV_TOMBSTONE_VERSION,
        }
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.db, self.version)
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({self})")
    }
}

/// A change's identity: the database that made the change and the version
/// it got there (§2.2.1.4.4 `gvsnDbGuid`, `gvsnVersion`).
///
/// Ordered lexicographically by GUID (byte-wise) then version, as the
/// RequestUpdates pruning rule needs (§3.3.4.6.1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Gvsn {
    /// The database GUID of the member that made the change.
    pub db: Guid,
    /// The VSN of the change in that database.
    pub version: Vsn,
}

impl Gvsn {
    /// A GVSN from its parts.
    pub const fn new(db: Guid, version: Vsn) -> Self {
        Gvsn { db, version }
    }
}

impl fmt::Display for Gvsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.db, self.version)
    }
}

impl fmt::Debug for Gvsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gvsn({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_guid_is_version_4_variant_1() {
        let g = Guid::from_random([0xff; 16]);
        let text = g.to_string();
        // xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx
        assert_eq!(&text[14..15], "4", "{text}");
        assert_eq!(&text[19..20], "b", "{text}");
        assert_eq!(Guid::from_random([0; 16]).to_string(), "00000000-0000-4000-8000-000000000000");
    }

    const FRSTRANS: &str = "897e2e5f-93f3-4376-9c9c-fd2277495c27";

    #[test]
    fn guid_wire_bytes_are_little_endian_fields() {
        let g: Guid = FRSTRANS.parse().unwrap();
        assert_eq!(
            g.to_bytes(),
            [
                0x5f, 0x2e, 0x7e, 0x89, 0xf3, 0x93, 0x76, 0x43, 0x9c, 0x9c, 0xfd, 0x22, 0x77, 0x49,
                0x5c, 0x27
            ]
        );
        assert_eq!(g.data1(), 0x897e2e5f);
        assert_eq!(g.data2(), 0x93f3);
        assert_eq!(g.data3(), 0x4376);
    }

    #[test]
    fn guid_display_round_trips() {
        let g: Guid = FRSTRANS.parse().unwrap();
        assert_eq!(g.to_string(), FRSTRANS);
        let braced: Guid = "{5BC1ED07-F5F5-485F-9DFD-6FD0ACF9A23C}".parse().unwrap();
        assert_eq!(braced.to_string(), "5bc1ed07-f5f5-485f-9dfd-6fd0acf9a23c");
        assert_eq!(
            Guid::NIL.to_string(),
            "00000000-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn guid_parse_rejects_bad_text() {
        for bad in [
            "",
            "{897e2e5f-93f3-4376-9c9c-fd2277495c27",
            "897e2e5f-93f3-4376-9c9c-fd2277495c2",
            "897e2e5f-93f3-4376-9c9cfd2277495c27a",
            "897e2e5f_93f3-4376-9c9c-fd2277495c27",
        ] {
            assert!(
                matches!(bad.parse::<Guid>(), Err(GuidParseError::Layout(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "897e2e5g-93f3-4376-9c9c-fd2277495c27".parse::<Guid>(),
            Err(GuidParseError::Digit(_))
        ));
        // Multi-byte UTF-8 must not panic.
        assert!("897e2e5é-93f3-4376-9c9c-fd2277495c2"
            .parse::<Guid>()
            .is_err());
    }

    #[test]
    fn guid_order_is_memcmp_of_wire_bytes() {
        // Text order would say 00000001 < 00000100; memcmp of the
        // little-endian Data1 says the opposite (§3.3.4.6.2).
        let a: Guid = "00000001-0000-0000-0000-000000000000".parse().unwrap();
        let b: Guid = "00000100-0000-0000-0000-000000000000".parse().unwrap();
        assert!(a > b);
        assert_eq!(a.to_bytes().cmp(&b.to_bytes()), a.cmp(&b));
    }

    #[test]
    fn reserved_versions() {
        assert!(is_reserved_version(0));
        assert!(is_reserved_version(8));
        assert!(!is_reserved_version(FIRST_FREE_VERSION));
        assert_eq!(FIRST_FREE_VERSION, 9);
        let f = Guid([7; 16]);
        assert_eq!(Uid::root_of(f), Uid::new(f, 1));
        assert!(Uid::root_of(f).is_root());
        let m = Guid([5; 16]);
        assert_eq!(Uid::vv_tombstone(f, m), Uid::new(Guid([2; 16]), 2));
    }

    #[test]
    fn gvsn_order_is_guid_then_version() {
        let lo = Guid([1; 16]);
        let hi = Guid([2; 16]);
        assert!(Gvsn::new(lo, 100) < Gvsn::new(hi, 1));
        assert!(Gvsn::new(lo, 1) < Gvsn::new(lo, 2));
    }
}
