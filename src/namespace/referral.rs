//! MS-DFSC referral messages: request parsing (§2.2.2, §2.2.3) and response
//! encoding (§2.2.4, §2.2.5.1-§2.2.5.4). Pure functions over bytes.

use thiserror::Error;

/// Header flag R, ReferralServers (§2.2.4).
pub const HEADER_REFERRAL_SERVERS: u32 = 0x1;
/// Header flag S, StorageServers (§2.2.4).
pub const HEADER_STORAGE_SERVERS: u32 = 0x2;
/// Header flag T, TargetFailback (§2.2.4; V4 only).
pub const HEADER_TARGET_FAILBACK: u32 = 0x4;
/// ReferralEntryFlags NameListReferral (§2.2.5.3); never set for root/link.
pub const ENTRY_NAME_LIST_REFERRAL: u16 = 0x2;
/// ReferralEntryFlags TargetSetBoundary (§2.2.5.4; V4 only).
pub const ENTRY_TARGET_SET_BOUNDARY: u16 = 0x4;

/// Fixed entry sizes: V1 8 + inline string; V2 22; V3/V4 34 with the
/// 16-byte ServiceSiteGuid (§2.2.5.3.1), as Windows and Samba send.
const V1_FIXED: usize = 8;
const V2_SIZE: usize = 22;
const V34_SIZE: usize = 34;
const HEADER_SIZE: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReferralError {
    #[error("request too short")]
    Truncated,
    #[error("request file name has an odd byte length")]
    OddLength,
    #[error("request file name is not valid UTF-16")]
    BadUtf16,
    #[error("referral level {0} is not 1-4")]
    BadLevel(u16),
    #[error("response too large for 16-bit offsets")]
    TooLarge,
    #[error("path too long for PathConsumed")]
    PathTooLong,
}

/// A parsed REQ_GET_DFS_REFERRAL or REQ_GET_DFS_REFERRAL_EX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralRequest {
    pub max_referral_level: u16,
    pub path: String,
    /// SiteName of REQ_GET_DFS_REFERRAL_EX, when sent.
    pub site_name: Option<String>,
}

fn utf16(bytes: &[u8]) -> Result<String, ReferralError> {
    if bytes.len() % 2 != 0 {
        return Err(ReferralError::OddLength);
    }
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    // Stop at the terminating NUL (§2.2.2 says null-terminated; be lenient if
    // it is missing, as Samba is).
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    String::from_utf16(&units[..end]).map_err(|_| ReferralError::BadUtf16)
}

fn le16(b: &[u8], at: usize) -> Result<u16, ReferralError> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or(ReferralError::Truncated)
}

/// Parses REQ_GET_DFS_REFERRAL (§2.2.2): MaxReferralLevel then a
/// null-terminated UTF-16LE path.
pub fn parse_request(buf: &[u8]) -> Result<ReferralRequest, ReferralError> {
    let level = le16(buf, 0)?;
    let path = utf16(&buf[2..])?;
    Ok(ReferralRequest { max_referral_level: level, path, site_name: None })
}

/// Parses REQ_GET_DFS_REFERRAL_EX (§2.2.3, §2.2.3.1).
pub fn parse_request_ex(buf: &[u8]) -> Result<ReferralRequest, ReferralError> {
    let level = le16(buf, 0)?;
    let flags = le16(buf, 2)?;
    let len = buf.get(4..8).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok_or(ReferralError::Truncated)?;
    let data = buf.get(8..).ok_or(ReferralError::Truncated)?;
    let data = data.get(..len as usize).ok_or(ReferralError::Truncated)?;
    let name_len = usize::from(le16(data, 0)?);
    let name = data.get(2..2 + name_len).ok_or(ReferralError::Truncated)?;
    let path = utf16(name)?;
    let site_name = if flags & 1 != 0 {
        let at = 2 + name_len;
        let site_len = usize::from(le16(data, at)?);
        Some(utf16(data.get(at + 2..at + 2 + site_len).ok_or(ReferralError::Truncated)?)?)
    } else {
        None
    };
    Ok(ReferralRequest { max_referral_level: level, path, site_name })
}

/// Referral entry version (§2.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V1 = 1,
    V2 = 2,
    V3 = 3,
    V4 = 4,
}

impl Version {
    /// The version to answer with: the level the client asked for, since
    /// this server speaks all four (§3.2.5.1 "SHOULD respond with the
    /// highest version … it supports"); levels above 4 get 4.
    pub fn for_level(level: u16) -> Result<Version, ReferralError> {
        Ok(match level {
            0 => return Err(ReferralError::BadLevel(0)),
            1 => Version::V1,
            2 => Version::V2,
            3 => Version::V3,
            _ => Version::V4,
        })
    }
    pub fn number(self) -> u16 {
        self as u16
    }
}

/// ServerType (§2.2.5.x): root targets or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerType {
    Link = 0,
    Root = 1,
}

/// One referral entry to encode (non-NameListReferral).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Target in referral form `\host\share…`.
    pub target: String,
    /// V4 only: first target of a target set.
    pub target_set_boundary: bool,
}

/// A root or link referral response (§2.2.4). All entries share version,
/// server type, TTL and DFS path (§3.2.5.5: "the TimeToLive field of each
/// referral entry MUST be the same").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub path_consumed: u16,
    pub header_flags: u32,
    pub version: Version,
    pub server_type: ServerType,
    pub ttl: u32,
    /// DFSPath and DFSAlternatePath (the same string, §3.2.5.5).
    pub dfs_path: String,
    pub entries: Vec<Entry>,
}

impl Response {
    /// ReferralEntryFlags of entry `i`.
    pub fn entry_flags(&self, i: usize) -> u16 {
        match self.entries.get(i) {
            Some(e) if self.version == Version::V4 && e.target_set_boundary => ENTRY_TARGET_SET_BOUNDARY,
            _ => 0,
        }
    }

    /// Header flags as put on the wire: T only for V4 (§2.2.4 "MUST be set
    /// to 0 … for all DFS referral versions except … 4"); R and S both for
    /// V1 (§3.2.5.5).
    pub fn wire_header_flags(&self) -> u32 {
        let mut f = self.header_flags;
        if self.version != Version::V4 {
            f &= !HEADER_TARGET_FAILBACK;
        }
        if self.version == Version::V1 {
            f |= HEADER_REFERRAL_SERVERS | HEADER_STORAGE_SERVERS;
        }
        f
    }
}

fn put16(w: &mut Vec<u8>, v: u16) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16().chain(std::iter::once(0)).flat_map(u16::to_le_bytes).collect()
}

fn u16_of(n: usize) -> Result<u16, ReferralError> {
    u16::try_from(n).map_err(|_| ReferralError::TooLarge)
}

/// Encodes a response (§2.2.4). Layout for V2-V4, as Windows sends it
/// (§4.5): header, all fixed-size entries, then the string buffer with
/// DFSPath, a copy for DFSAlternatePath, and each entry's target; every
/// offset is relative to the start of its own entry (§2.2.5).
/// V1 entries carry the target inline (§2.2.5.1).
pub fn encode(resp: &Response) -> Result<Vec<u8>, ReferralError> {
    let mut w = Vec::new();
    put16(&mut w, resp.path_consumed);
    put16(&mut w, u16_of(resp.entries.len())?);
    put32(&mut w, resp.wire_header_flags());
    let server_type = resp.server_type as u16;
    if resp.version == Version::V1 {
        for (i, e) in resp.entries.iter().enumerate() {
            let name = utf16z(&e.target);
            put16(&mut w, 1);
            put16(&mut w, u16_of(V1_FIXED + name.len())?);
            put16(&mut w, server_type);
            put16(&mut w, resp.entry_flags(i));
            w.extend_from_slice(&name);
        }
        return Ok(w);
    }
    let size = if resp.version == Version::V2 { V2_SIZE } else { V34_SIZE };
    let path = utf16z(&resp.dfs_path);
    let strings_start = HEADER_SIZE + size * resp.entries.len();
    let path_at = strings_start;
    let alt_at = path_at + path.len();
    let mut target_at = alt_at + path.len();
    for (i, e) in resp.entries.iter().enumerate() {
        let entry_at = HEADER_SIZE + size * i;
        let target_len = e.target.encode_utf16().count() * 2 + 2;
        // Offsets from this entry; u16_of refuses ones past 64 KiB.
        let (p, a, t) = (path_at - entry_at, alt_at - entry_at, target_at - entry_at);
        put16(&mut w, resp.version.number());
        put16(&mut w, u16_of(size)?);
        put16(&mut w, server_type);
        put16(&mut w, resp.entry_flags(i));
        if resp.version == Version::V2 {
            put32(&mut w, 0); // Proximity, MUST be 0 (§2.2.5.2)
        }
        put32(&mut w, resp.ttl);
        put16(&mut w, u16_of(p)?);
        put16(&mut w, u16_of(a)?);
        put16(&mut w, u16_of(t)?);
        if resp.version != Version::V2 {
            w.extend_from_slice(&[0u8; 16]); // ServiceSiteGuid, MUST be 0
        }
        target_at += target_len;
    }
    w.extend_from_slice(&path);
    w.extend_from_slice(&path);
    for e in &resp.entries {
        w.extend_from_slice(&utf16z(&e.target));
    }
    Ok(w)
}

/// An encoded response cut to the client's maximum output size the way
/// stock Samba does (smb2_ioctl_dfs.c: the blob is truncated and the call
/// returns STATUS_BUFFER_OVERFLOW).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    /// The full response did not fit: report STATUS_BUFFER_OVERFLOW
    /// (0x80000005) with `bytes` (already truncated).
    pub overflow: bool,
}

/// NTSTATUS for an overflowing referral (§3.2.5.1).
pub const STATUS_BUFFER_OVERFLOW: u32 = 0x8000_0005;

/// Encodes and truncates to `max_output`.
pub fn encode_limited(resp: &Response, max_output: u32) -> Result<Encoded, ReferralError> {
    let mut bytes = encode(resp)?;
    let max = usize::try_from(max_output).unwrap_or(usize::MAX);
    let overflow = bytes.len() > max;
    if overflow {
        bytes.truncate(max);
    }
    Ok(Encoded { bytes, overflow })
}

/// PathConsumed for a matched prefix: UTF-16 bytes (§2.2.4).
pub fn path_consumed(prefix: &str) -> Result<u16, ReferralError> {
    u16::try_from(prefix.encode_utf16().count() * 2).map_err(|_| ReferralError::PathTooLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Vec<u8> {
        utf16z(s)
    }

    fn resp(version: Version, server_type: ServerType, targets: &[&str]) -> Response {
        Response {
            path_consumed: path_consumed(r"\srv\ns").unwrap(),
            header_flags: HEADER_REFERRAL_SERVERS | HEADER_STORAGE_SERVERS,
            version,
            server_type,
            ttl: 300,
            dfs_path: r"\srv\ns".into(),
            entries: targets
                .iter()
                .enumerate()
                .map(|(i, t)| Entry { target: t.to_string(), target_set_boundary: i == 0 })
                .collect(),
        }
    }

    #[test]
    fn parse_plain_request() {
        let mut b = vec![4, 0];
        b.extend(u(r"\srv\NS\link"));
        let r = parse_request(&b).unwrap();
        assert_eq!(r, ReferralRequest { max_referral_level: 4, path: r"\srv\NS\link".into(), site_name: None });
        // Missing terminator is tolerated.
        let r = parse_request(&b[..b.len() - 2]).unwrap();
        assert_eq!(r.path, r"\srv\NS\link");
        assert_eq!(parse_request(&[3]), Err(ReferralError::Truncated));
        assert_eq!(parse_request(&[3, 0, 0x41]), Err(ReferralError::OddLength));
        assert_eq!(parse_request(&[3, 0, 0x00, 0xd8, 0x41, 0]), Err(ReferralError::BadUtf16));
        assert_eq!(parse_request(&[3, 0]).unwrap().path, "");
    }

    #[test]
    fn parse_ex_request() {
        let name: Vec<u8> = r"\srv\ns".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let site: Vec<u8> = "Paris".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut data = Vec::new();
        data.extend((name.len() as u16).to_le_bytes());
        data.extend(&name);
        data.extend((site.len() as u16).to_le_bytes());
        data.extend(&site);
        let mut b = vec![4, 0, 1, 0];
        b.extend((data.len() as u32).to_le_bytes());
        b.extend(&data);
        let r = parse_request_ex(&b).unwrap();
        assert_eq!(r.path, r"\srv\ns");
        assert_eq!(r.site_name.as_deref(), Some("Paris"));
        b[2] = 0;
        assert_eq!(parse_request_ex(&b).unwrap().site_name, None);
        for n in 0..b.len() {
            let _ = parse_request_ex(&b[..n]);
        }
        b[4] = 0xff;
        assert_eq!(parse_request_ex(&b), Err(ReferralError::Truncated));
    }

    #[test]
    fn version_for_level() {
        assert_eq!(Version::for_level(0), Err(ReferralError::BadLevel(0)));
        assert_eq!(Version::for_level(1), Ok(Version::V1));
        assert_eq!(Version::for_level(2), Ok(Version::V2));
        assert_eq!(Version::for_level(3), Ok(Version::V3));
        assert_eq!(Version::for_level(4), Ok(Version::V4));
        assert_eq!(Version::for_level(9), Ok(Version::V4));
    }

    /// V3 root referral with two targets, built by hand from §2.2.4 and
    /// §2.2.5.3.1.
    #[test]
    fn v3_bytes_by_hand() {
        let r = resp(Version::V3, ServerType::Root, &[r"\a\ns", r"\bb\ns"]);
        let got = encode(&r).unwrap();
        let mut want = Vec::new();
        // Header: PathConsumed 14 ("\srv\ns" = 7 chars), 2 referrals, R|S.
        want.extend([14, 0, 2, 0, 3, 0, 0, 0]);
        // Strings start at 8 + 2*34 = 76: path @76 (16 bytes), alt @92,
        // "\a\ns" @108 (12 bytes), "\bb\ns" @120.
        // Entry 0 at 8: offsets 68, 84, 100.
        want.extend([3, 0, 34, 0, 1, 0, 0, 0, 0x2c, 0x01, 0, 0]);
        want.extend([68, 0, 84, 0, 100, 0]);
        want.extend([0u8; 16]);
        // Entry 1 at 42: offsets 34, 50, 78.
        want.extend([3, 0, 34, 0, 1, 0, 0, 0, 0x2c, 0x01, 0, 0]);
        want.extend([34, 0, 50, 0, 78, 0]);
        want.extend([0u8; 16]);
        want.extend(u(r"\srv\ns"));
        want.extend(u(r"\srv\ns"));
        want.extend(u(r"\a\ns"));
        want.extend(u(r"\bb\ns"));
        assert_eq!(got, want);
    }

    /// V4 link referral with header T and target-set boundaries, by hand
    /// from §2.2.4 and §2.2.5.4.
    #[test]
    fn v4_bytes_by_hand() {
        let mut r = resp(Version::V4, ServerType::Link, &[r"\x\s", r"\y\s", r"\z\s"]);
        r.header_flags = HEADER_STORAGE_SERVERS | HEADER_TARGET_FAILBACK;
        r.entries[2].target_set_boundary = true;
        r.ttl = 1800;
        r.dfs_path = r"\srv\ns\L".into();
        r.path_consumed = 18;
        let got = encode(&r).unwrap();
        let mut want = Vec::new();
        want.extend([18, 0, 3, 0, 6, 0, 0, 0]);
        // Strings at 8 + 3*34 = 110: path @110 (20 bytes), alt @130,
        // targets (10 bytes each) @150, @160, @170.
        let entry = |flags: u8, at: usize, t: usize| {
            let mut e = vec![4, 0, 34, 0, 0, 0, flags, 0, 0x08, 0x07, 0, 0];
            for off in [110 - at, 130 - at, t - at] {
                e.extend((off as u16).to_le_bytes());
            }
            e.extend([0u8; 16]);
            e
        };
        want.extend(entry(4, 8, 150));
        want.extend(entry(0, 42, 160));
        want.extend(entry(4, 76, 170));
        want.extend(u(r"\srv\ns\L"));
        want.extend(u(r"\srv\ns\L"));
        for t in [r"\x\s", r"\y\s", r"\z\s"] {
            want.extend(u(t));
        }
        assert_eq!(got, want);
    }

    #[test]
    fn v2_and_v1_layout() {
        let r = resp(Version::V2, ServerType::Root, &[r"\a\ns"]);
        let b = encode(&r).unwrap();
        assert_eq!(&b[..8], &[14, 0, 1, 0, 3, 0, 0, 0]);
        // Version 2, size 22, root, flags 0, proximity 0, TTL 300, offsets.
        assert_eq!(&b[8..30], &[2, 0, 22, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x2c, 1, 0, 0, 22, 0, 38, 0, 54, 0]);
        assert_eq!(&b[30..], [u(r"\srv\ns"), u(r"\srv\ns"), u(r"\a\ns")].concat().as_slice());

        let mut r = resp(Version::V1, ServerType::Link, &[r"\a\ns", r"\b\x"]);
        r.header_flags = HEADER_STORAGE_SERVERS;
        let b = encode(&r).unwrap();
        // V1 forces R|S (§3.2.5.5) and carries names inline; no boundary flags.
        assert_eq!(&b[..8], &[14, 0, 2, 0, 3, 0, 0, 0]);
        assert_eq!(&b[8..16], &[1, 0, 20, 0, 0, 0, 0, 0]);
        assert_eq!(&b[16..28], u(r"\a\ns").as_slice());
        assert_eq!(&b[28..36], &[1, 0, 18, 0, 0, 0, 0, 0]);
        assert_eq!(&b[36..], u(r"\b\x").as_slice());
    }

    #[test]
    fn t_and_boundary_only_in_v4() {
        for v in [Version::V1, Version::V2, Version::V3] {
            let mut r = resp(v, ServerType::Root, &[r"\a\ns"]);
            r.header_flags |= HEADER_TARGET_FAILBACK;
            let b = encode(&r).unwrap();
            assert_eq!(b[4] & 4, 0, "{v:?}");
            assert_eq!(r.entry_flags(0), 0);
        }
    }

    #[test]
    fn limited_output_truncates_like_samba() {
        let r = resp(Version::V3, ServerType::Root, &[r"\a\ns", r"\bb\ns"]);
        let full = encode(&r).unwrap();
        let e = encode_limited(&r, full.len() as u32).unwrap();
        assert!(!e.overflow);
        assert_eq!(e.bytes, full);
        let e = encode_limited(&r, 50).unwrap();
        assert!(e.overflow);
        assert_eq!(e.bytes, &full[..50]);
        let e = encode_limited(&r, 0).unwrap();
        assert!(e.overflow && e.bytes.is_empty());
    }

    #[test]
    fn too_large_is_an_error() {
        let long = format!(r"\h\{}", "x".repeat(200));
        let targets: Vec<&str> = std::iter::repeat(long.as_str()).take(300).collect();
        let r = resp(Version::V3, ServerType::Link, &targets);
        assert_eq!(encode(&r), Err(ReferralError::TooLarge));
        assert_eq!(path_consumed(&"x".repeat(40000)), Err(ReferralError::PathTooLong));
    }
}
