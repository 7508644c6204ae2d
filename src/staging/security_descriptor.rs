//! Self-relative security descriptors (MS-DTYP §2.4.6, the MS_TYPE_SECURITY_DATA
//! chunk of MS-FRS2 §3.2.4.1.14.1): validation, SDDL rendering (MS-DTYP
//! §2.5.1) and SDDL parsing back to the binary form.

use std::fmt::Write as _;

pub const SE_OWNER_DEFAULTED: u16 = 0x0001;
pub const SE_GROUP_DEFAULTED: u16 = 0x0002;
pub const SE_DACL_PRESENT: u16 = 0x0004;
pub const SE_SACL_PRESENT: u16 = 0x0010;
pub const SE_DACL_AUTO_INHERIT_REQ: u16 = 0x0100;
pub const SE_SACL_AUTO_INHERIT_REQ: u16 = 0x0200;
pub const SE_DACL_AUTO_INHERITED: u16 = 0x0400;
pub const SE_SACL_AUTO_INHERITED: u16 = 0x0800;
pub const SE_DACL_PROTECTED: u16 = 0x1000;
pub const SE_SACL_PROTECTED: u16 = 0x2000;
pub const SE_SELF_RELATIVE: u16 = 0x8000;

const HEADER_LEN: usize = 20;
const MAX_SUB_AUTHORITIES: usize = 15;

/// Why bytes are not a valid self-relative security descriptor, with the
/// byte offset inside the descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdError {
    #[error("security descriptor too short: {len} bytes")]
    TooShort { len: usize },
    #[error("security descriptor revision {found}, expected 1")]
    BadRevision { found: u8 },
    #[error("security descriptor is not self-relative (control 0x{control:04x})")]
    NotSelfRelative { control: u16 },
    #[error("{what} offset {offset} lies outside the {len}-byte descriptor")]
    OffsetOutOfRange { what: &'static str, offset: u32, len: usize },
    #[error("invalid SID at offset {offset}: {reason}")]
    BadSid { offset: usize, reason: &'static str },
    #[error("invalid ACL at offset {offset}: {reason}")]
    BadAcl { offset: usize, reason: &'static str },
    #[error("invalid ACE at offset {offset}: {reason}")]
    BadAce { offset: usize, reason: &'static str },
    #[error("ACE type 0x{ace_type:02x} has no SDDL form this tool can write")]
    NoSddlForm { ace_type: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SDDL at character {at}: {reason}")]
pub struct SddlError {
    pub at: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sid {
    /// 48-bit identifier authority.
    pub authority: u64,
    pub sub_authorities: Vec<u32>,
}

/// Object-ACE extras (MS-DTYP §2.4.4.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectTypes {
    pub object_type: Option<[u8; 16]>,
    pub inherited_object_type: Option<[u8; 16]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub ace_type: u8,
    pub flags: u8,
    pub mask: u32,
    pub object: Option<ObjectTypes>,
    pub sid: Sid,
    /// Trailing application data (callback ACEs' conditions, padding).
    pub extra: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub revision: u8,
    pub aces: Vec<Ace>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityDescriptor {
    pub control: u16,
    pub owner: Option<Sid>,
    pub group: Option<Sid>,
    /// `None` with SE_SACL_PRESENT means a null SACL.
    pub sacl: Option<Acl>,
    /// `None` with SE_DACL_PRESENT means a null DACL (everyone has access).
    pub dacl: Option<Acl>,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn is_object_ace(t: u8) -> bool {
    // ACCESS_ALLOWED/DENIED/SYSTEM_AUDIT/ALARM _OBJECT and their callback
    // variants (MS-DTYP §2.4.4.1).
    matches!(t, 0x05..=0x08 | 0x0B | 0x0C | 0x0F | 0x10)
}

impl Sid {
    /// Parses a SID at `off` within `b`; returns it and its length.
    pub fn parse(b: &[u8], off: usize) -> Result<(Sid, usize), SdError> {
        let bad = |reason| SdError::BadSid { offset: off, reason };
        if b.len() < off + 8 {
            return Err(bad("truncated header"));
        }
        if b[off] != 1 {
            return Err(bad("revision is not 1"));
        }
        let n = b[off + 1] as usize;
        if n > MAX_SUB_AUTHORITIES {
            return Err(bad("more than 15 sub-authorities"));
        }
        let len = 8 + 4 * n;
        if b.len() < off + len {
            return Err(bad("sub-authorities run past the end"));
        }
        let authority = b[off + 2..off + 8].iter().fold(0u64, |a, &x| a << 8 | x as u64);
        let sub_authorities = (0..n).map(|i| u32_at(b, off + 8 + 4 * i)).collect();
        Ok((Sid { authority, sub_authorities }, len))
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(1);
        out.push(self.sub_authorities.len() as u8);
        out.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for s in &self.sub_authorities {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }

    pub fn encoded_len(&self) -> usize {
        8 + 4 * self.sub_authorities.len()
    }

    /// `S-1-5-32-544` form (MS-DTYP §2.4.2.1).
    pub fn to_string_form(&self) -> String {
        let mut s = if self.authority < 1 << 32 {
            format!("S-1-{}", self.authority)
        } else {
            format!("S-1-0x{:012X}", self.authority)
        };
        for a in &self.sub_authorities {
            let _ = write!(s, "-{a}");
        }
        s
    }

    pub fn parse_string_form(s: &str) -> Option<Sid> {
        let rest = s.strip_prefix("S-1-").or_else(|| s.strip_prefix("s-1-"))?;
        let mut parts = rest.split('-');
        let a = parts.next()?;
        let authority = match a.strip_prefix("0x").or_else(|| a.strip_prefix("0X")) {
            Some(h) => u64::from_str_radix(h, 16).ok()?,
            None => a.parse().ok()?,
        };
        if authority >= 1 << 48 {
            return None;
        }
        let subs: Option<Vec<u32>> = parts.map(|p| p.parse().ok()).collect();
        let sub_authorities = subs?;
        if sub_authorities.len() > MAX_SUB_AUTHORITIES {
            return None;
        }
        Some(Sid { authority, sub_authorities })
    }
}

/// Well-known SID aliases of SDDL (MS-DTYP §2.5.1.1) that need no domain.
const SID_ALIASES: &[(&str, &str)] = &[
    ("WD", "S-1-1-0"),
    ("CO", "S-1-3-0"),
    ("CG", "S-1-3-1"),
    ("OW", "S-1-3-4"),
    ("NU", "S-1-5-2"),
    ("IU", "S-1-5-4"),
    ("SU", "S-1-5-6"),
    ("AN", "S-1-5-7"),
    ("ED", "S-1-5-9"),
    ("PS", "S-1-5-10"),
    ("AU", "S-1-5-11"),
    ("RC", "S-1-5-12"),
    ("SY", "S-1-5-18"),
    ("LS", "S-1-5-19"),
    ("NS", "S-1-5-20"),
    ("WR", "S-1-5-33"),
    ("BA", "S-1-5-32-544"),
    ("BU", "S-1-5-32-545"),
    ("BG", "S-1-5-32-546"),
    ("PU", "S-1-5-32-547"),
    ("AO", "S-1-5-32-548"),
    ("SO", "S-1-5-32-549"),
    ("PO", "S-1-5-32-550"),
    ("BO", "S-1-5-32-551"),
    ("RE", "S-1-5-32-552"),
    ("RU", "S-1-5-32-554"),
    ("RD", "S-1-5-32-555"),
    ("NO", "S-1-5-32-556"),
    ("MU", "S-1-5-32-558"),
    ("LU", "S-1-5-32-559"),
    ("IS", "S-1-5-32-568"),
    ("CY", "S-1-5-32-569"),
    ("ER", "S-1-5-32-573"),
    ("AC", "S-1-15-2-1"),
    ("LW", "S-1-16-4096"),
    ("ME", "S-1-16-8192"),
    ("MP", "S-1-16-8448"),
    ("HI", "S-1-16-12288"),
    ("SI", "S-1-16-16384"),
];

const ACE_TYPES: &[(&str, u8)] = &[
    ("A", 0x00),
    ("D", 0x01),
    ("AU", 0x02),
    ("AL", 0x03),
    ("OA", 0x05),
    ("OD", 0x06),
    ("OU", 0x07),
    ("OL", 0x08),
    ("ML", 0x11),
    ("SP", 0x13),
];

const ACE_FLAGS: &[(&str, u8)] = &[
    ("OI", 0x01),
    ("CI", 0x02),
    ("NP", 0x04),
    ("IO", 0x08),
    ("ID", 0x10),
    ("SA", 0x40),
    ("FA", 0x80),
];

/// Whole-mask file rights, tried first when rendering.
const FILE_RIGHTS: &[(&str, u32)] =
    &[("FA", 0x001F_01FF), ("FR", 0x0012_0089), ("FW", 0x0012_0116), ("FX", 0x0012_00A0)];

const RIGHTS: &[(&str, u32)] = &[
    ("GA", 0x1000_0000),
    ("GR", 0x8000_0000),
    ("GW", 0x4000_0000),
    ("GX", 0x2000_0000),
    ("RC", 0x0002_0000),
    ("SD", 0x0001_0000),
    ("WD", 0x0004_0000),
    ("WO", 0x0008_0000),
    ("CC", 0x0000_0001),
    ("DC", 0x0000_0002),
    ("LC", 0x0000_0004),
    ("SW", 0x0000_0008),
    ("RP", 0x0000_0010),
    ("WP", 0x0000_0020),
    ("DT", 0x0000_0040),
    ("LO", 0x0000_0080),
    ("CR", 0x0000_0100),
];

const EXTRA_RIGHTS: &[(&str, u32)] = &[
    ("KA", 0x000F_003F),
    ("KR", 0x0002_0019),
    ("KW", 0x0002_0006),
    ("KX", 0x0002_0019),
    ("NR", 0x1),
    ("NW", 0x2),
    ("NX", 0x4),
];

fn sid_to_sddl(s: &Sid) -> String {
    let full = s.to_string_form();
    SID_ALIASES
        .iter()
        .find(|(_, v)| *v == full)
        .map(|(a, _)| a.to_string())
        .unwrap_or(full)
}

fn guid_to_string(g: &[u8; 16]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]
    )
}

fn parse_guid(s: &str) -> Option<[u8; 16]> {
    let p: Vec<&str> = s.split('-').collect();
    if p.len() != 5 || p[0].len() != 8 || p[1].len() != 4 || p[2].len() != 4 || p[3].len() != 4 || p[4].len() != 12 {
        return None;
    }
    let mut g = [0u8; 16];
    g[0..4].copy_from_slice(&u32::from_str_radix(p[0], 16).ok()?.to_le_bytes());
    g[4..6].copy_from_slice(&u16::from_str_radix(p[1], 16).ok()?.to_le_bytes());
    g[6..8].copy_from_slice(&u16::from_str_radix(p[2], 16).ok()?.to_le_bytes());
    let tail = format!("{}{}", p[3], p[4]);
    for i in 0..8 {
        g[8 + i] = u8::from_str_radix(tail.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(g)
}

fn rights_to_sddl(mask: u32) -> String {
    if let Some((n, _)) = FILE_RIGHTS.iter().find(|(_, v)| *v == mask) {
        return n.to_string();
    }
    let covered: u32 = RIGHTS.iter().map(|(_, v)| v).fold(0, |a, b| a | b);
    if mask != 0 && mask & !covered == 0 {
        return RIGHTS.iter().filter(|(_, v)| mask & v != 0).map(|(n, _)| *n).collect();
    }
    format!("0x{mask:x}")
}

impl Acl {
    fn parse(b: &[u8], off: usize) -> Result<Acl, SdError> {
        let bad = |o: usize, reason| SdError::BadAcl { offset: o, reason };
        if b.len() < off + 8 {
            return Err(bad(off, "truncated ACL header"));
        }
        let revision = b[off];
        if !(2..=4).contains(&revision) {
            return Err(bad(off, "ACL revision is not 2, 3 or 4"));
        }
        let size = u16_at(b, off + 2) as usize;
        let count = u16_at(b, off + 4) as usize;
        if size < 8 {
            return Err(bad(off, "ACL size smaller than its header"));
        }
        if off + size > b.len() {
            return Err(bad(off, "ACL size runs past the end of the descriptor"));
        }
        let end = off + size;
        let mut p = off + 8;
        let mut aces = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let ace_bad = |reason| SdError::BadAce { offset: p, reason };
            if p + 4 > end {
                return Err(ace_bad("ACE header runs past the ACL size"));
            }
            let ace_type = b[p];
            let flags = b[p + 1];
            let ace_size = u16_at(b, p + 2) as usize;
            if ace_size < 8 + 8 {
                return Err(ace_bad("ACE too small for a mask and a SID"));
            }
            if p + ace_size > end {
                return Err(ace_bad("ACE size runs past the ACL size"));
            }
            let body = &b[..p + ace_size];
            let mask = u32_at(body, p + 4);
            let mut q = p + 8;
            let object = if is_object_ace(ace_type) {
                if q + 4 > body.len() {
                    return Err(ace_bad("object ACE flags truncated"));
                }
                let of = u32_at(body, q);
                q += 4;
                let mut o = ObjectTypes::default();
                for (bit, slot) in [(1u32, &mut o.object_type), (2u32, &mut o.inherited_object_type)] {
                    if of & bit != 0 {
                        let g: [u8; 16] = body
                            .get(q..q + 16)
                            .and_then(|s| s.try_into().ok())
                            .ok_or(ace_bad("object ACE GUID truncated"))?;
                        *slot = Some(g);
                        q += 16;
                    }
                }
                Some(o)
            } else {
                None
            };
            let (sid, sl) = Sid::parse(body, q).map_err(|_| ace_bad("invalid SID inside ACE"))?;
            q += sl;
            let extra = body[q..].to_vec();
            aces.push(Ace { ace_type, flags, mask, object, sid, extra });
            p += ace_size;
        }
        Ok(Acl { revision, aces })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[self.revision, 0, 0, 0]);
        out.extend_from_slice(&(self.aces.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        for a in &self.aces {
            let ace_start = out.len();
            out.extend_from_slice(&[a.ace_type, a.flags, 0, 0]);
            out.extend_from_slice(&a.mask.to_le_bytes());
            if let Some(o) = &a.object {
                let f = u32::from(o.object_type.is_some()) | u32::from(o.inherited_object_type.is_some()) << 1;
                out.extend_from_slice(&f.to_le_bytes());
                for g in [&o.object_type, &o.inherited_object_type].into_iter().flatten() {
                    out.extend_from_slice(g);
                }
            }
            a.sid.encode(out);
            out.extend_from_slice(&a.extra);
            while (out.len() - ace_start) % 4 != 0 {
                out.push(0);
            }
            let sz = (out.len() - ace_start) as u16;
            out[ace_start + 2..ace_start + 4].copy_from_slice(&sz.to_le_bytes());
        }
        let sz = (out.len() - start) as u16;
        out[start + 2..start + 4].copy_from_slice(&sz.to_le_bytes());
    }

    fn to_sddl(&self, out: &mut String) -> Result<(), SdError> {
        for a in &self.aces {
            let t = ACE_TYPES
                .iter()
                .find(|(_, v)| *v == a.ace_type)
                .map(|(n, _)| *n)
                .ok_or(SdError::NoSddlForm { ace_type: a.ace_type })?;
            let flags: String = ACE_FLAGS.iter().filter(|(_, v)| a.flags & v != 0).map(|(n, _)| *n).collect();
            let (ot, it) = match &a.object {
                Some(o) => (
                    o.object_type.as_ref().map(guid_to_string).unwrap_or_default(),
                    o.inherited_object_type.as_ref().map(guid_to_string).unwrap_or_default(),
                ),
                None => (String::new(), String::new()),
            };
            let _ = write!(out, "({t};{flags};{};{ot};{it};{})", rights_to_sddl(a.mask), sid_to_sddl(&a.sid));
        }
        Ok(())
    }
}

impl SecurityDescriptor {
    /// Parses and validates a self-relative descriptor: revision 1, the
    /// self-relative flag, every offset and ACL/ACE size within bounds.
    pub fn parse(b: &[u8]) -> Result<Self, SdError> {
        if b.len() < HEADER_LEN {
            return Err(SdError::TooShort { len: b.len() });
        }
        if b[0] != 1 {
            return Err(SdError::BadRevision { found: b[0] });
        }
        let control = u16_at(b, 2);
        if control & SE_SELF_RELATIVE == 0 {
            return Err(SdError::NotSelfRelative { control });
        }
        let field = |what: &'static str, at: usize| -> Result<Option<usize>, SdError> {
            let o = u32_at(b, at);
            if o == 0 {
                return Ok(None);
            }
            if (o as usize) < HEADER_LEN || o as usize >= b.len() {
                return Err(SdError::OffsetOutOfRange { what, offset: o, len: b.len() });
            }
            Ok(Some(o as usize))
        };
        let owner = field("owner", 4)?.map(|o| Sid::parse(b, o).map(|s| s.0)).transpose()?;
        let group = field("group", 8)?.map(|o| Sid::parse(b, o).map(|s| s.0)).transpose()?;
        let sacl_off = field("SACL", 12)?;
        let dacl_off = field("DACL", 16)?;
        let sacl = match sacl_off {
            Some(o) if control & SE_SACL_PRESENT != 0 => Some(Acl::parse(b, o)?),
            _ => None,
        };
        let dacl = match dacl_off {
            Some(o) if control & SE_DACL_PRESENT != 0 => Some(Acl::parse(b, o)?),
            _ => None,
        };
        Ok(SecurityDescriptor { control, owner, group, sacl, dacl })
    }

    /// Self-relative encoding: header, SACL, DACL, owner, group.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        out[0] = 1;
        out[2..4].copy_from_slice(&(self.control | SE_SELF_RELATIVE).to_le_bytes());
        let put = |out: &mut Vec<u8>, at: usize| {
            let o = out.len() as u32;
            out[at..at + 4].copy_from_slice(&o.to_le_bytes());
        };
        if let Some(a) = &self.sacl {
            put(&mut out, 12);
            a.encode(&mut out);
        }
        if let Some(a) = &self.dacl {
            put(&mut out, 16);
            a.encode(&mut out);
        }
        if let Some(s) = &self.owner {
            put(&mut out, 4);
            s.encode(&mut out);
        }
        if let Some(s) = &self.group {
            put(&mut out, 8);
            s.encode(&mut out);
        }
        out
    }

    /// Renders SDDL (MS-DTYP §2.5.1): `O:` `G:` `D:` `S:` in that order.
    pub fn to_sddl(&self) -> Result<String, SdError> {
        let mut s = String::new();
        if let Some(o) = &self.owner {
            let _ = write!(s, "O:{}", sid_to_sddl(o));
        }
        if let Some(g) = &self.group {
            let _ = write!(s, "G:{}", sid_to_sddl(g));
        }
        let c = self.control;
        if c & SE_DACL_PRESENT != 0 {
            s.push_str("D:");
            acl_flags(&mut s, c, SE_DACL_PROTECTED, SE_DACL_AUTO_INHERIT_REQ, SE_DACL_AUTO_INHERITED);
            match &self.dacl {
                Some(a) => a.to_sddl(&mut s)?,
                None => s.push_str("NO_ACCESS_CONTROL"),
            }
        }
        if c & SE_SACL_PRESENT != 0 {
            s.push_str("S:");
            acl_flags(&mut s, c, SE_SACL_PROTECTED, SE_SACL_AUTO_INHERIT_REQ, SE_SACL_AUTO_INHERITED);
            match &self.sacl {
                Some(a) => a.to_sddl(&mut s)?,
                None => s.push_str("NO_ACCESS_CONTROL"),
            }
        }
        Ok(s)
    }

    /// Parses SDDL into a descriptor (self-relative when encoded).
    pub fn from_sddl(text: &str) -> Result<Self, SddlError> {
        SddlParser { s: text.as_bytes(), text, p: 0 }.parse()
    }
}

fn acl_flags(s: &mut String, c: u16, p: u16, ar: u16, ai: u16) {
    if c & p != 0 {
        s.push('P');
    }
    if c & ar != 0 {
        s.push_str("AR");
    }
    if c & ai != 0 {
        s.push_str("AI");
    }
}

struct SddlParser<'a> {
    s: &'a [u8],
    text: &'a str,
    p: usize,
}

impl SddlParser<'_> {
    fn err<T>(&self, reason: impl Into<String>) -> Result<T, SddlError> {
        Err(SddlError { at: self.p, reason: reason.into() })
    }

    fn at_component(&self) -> bool {
        self.s.len() >= self.p + 2 && b"OGDS".contains(&self.s[self.p]) && self.s[self.p + 1] == b':'
    }

    fn sid(&self, tok: &str) -> Result<Sid, SddlError> {
        let t = tok.trim();
        if let Some((_, v)) = SID_ALIASES.iter().find(|(a, _)| a.eq_ignore_ascii_case(t)) {
            return Sid::parse_string_form(v).map_or_else(|| self.err("internal alias table"), Ok);
        }
        match Sid::parse_string_form(t) {
            Some(s) => Ok(s),
            None => self.err(format!("unknown SID or alias {t:?} (domain-relative aliases such as DA need a full S-1-5-21-… SID)")),
        }
    }

    fn parse(mut self) -> Result<SecurityDescriptor, SddlError> {
        let mut sd = SecurityDescriptor { control: SE_SELF_RELATIVE, owner: None, group: None, sacl: None, dacl: None };
        while self.p < self.s.len() {
            if self.s[self.p].is_ascii_whitespace() {
                self.p += 1;
                continue;
            }
            if !self.at_component() {
                return self.err("expected O:, G:, D: or S:");
            }
            let kind = self.s[self.p];
            self.p += 2;
            let start = self.p;
            match kind {
                b'O' | b'G' => {
                    while self.p < self.s.len() && !self.at_component() {
                        self.p += 1;
                    }
                    let sid = self.sid(&self.text[start..self.p])?;
                    if kind == b'O' {
                        sd.owner = Some(sid);
                    } else {
                        sd.group = Some(sid);
                    }
                }
                _ => {
                    let dacl = kind == b'D';
                    let (pf, ar, ai, present) = if dacl {
                        (SE_DACL_PROTECTED, SE_DACL_AUTO_INHERIT_REQ, SE_DACL_AUTO_INHERITED, SE_DACL_PRESENT)
                    } else {
                        (SE_SACL_PROTECTED, SE_SACL_AUTO_INHERIT_REQ, SE_SACL_AUTO_INHERITED, SE_SACL_PRESENT)
                    };
                    sd.control |= present;
                    let mut null = false;
                    loop {
                        let rest = &self.text[self.p..];
                        if rest.starts_with("NO_ACCESS_CONTROL") {
                            null = true;
                            self.p += 17;
                        } else if rest.starts_with('P') {
                            sd.control |= pf;
                            self.p += 1;
                        } else if rest.starts_with("AR") {
                            sd.control |= ar;
                            self.p += 2;
                        } else if rest.starts_with("AI") {
                            sd.control |= ai;
                            self.p += 2;
                        } else {
                            break;
                        }
                    }
                    let mut aces = Vec::new();
                    while self.p < self.s.len() && self.s[self.p] == b'(' {
                        let close = match self.text[self.p..].find(')') {
                            Some(c) => self.p + c,
                            None => return self.err("unclosed ACE"),
                        };
                        let body = &self.text[self.p + 1..close];
                        aces.push(self.ace(body)?);
                        self.p = close + 1;
                    }
                    if null && !aces.is_empty() {
                        return self.err("NO_ACCESS_CONTROL with ACEs");
                    }
                    let revision = if aces.iter().any(|a| a.object.is_some()) { 4 } else { 2 };
                    let acl = if null { None } else { Some(Acl { revision, aces }) };
                    if dacl {
                        sd.dacl = acl;
                    } else {
                        sd.sacl = acl;
                    }
                    if self.p < self.s.len() && !self.at_component() && !self.s[self.p].is_ascii_whitespace() {
                        return self.err("expected an ACE \"(\" or the next component");
                    }
                }
            }
        }
        Ok(sd)
    }

    fn ace(&self, body: &str) -> Result<Ace, SddlError> {
        let f: Vec<&str> = body.split(';').collect();
        if f.len() != 6 {
            return self.err(format!("ACE ({body}) needs 6 fields: type;flags;rights;object;inherited object;SID"));
        }
        let ace_type = match ACE_TYPES.iter().find(|(n, _)| n.eq_ignore_ascii_case(f[0].trim())) {
            Some((_, v)) => *v,
            None => return self.err(format!("unsupported ACE type {:?}", f[0])),
        };
        let mut flags = 0u8;
        let mut rest = f[1].trim();
        while !rest.is_empty() {
            match ACE_FLAGS.iter().find(|(n, _)| rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(n)) {
                Some((_, v)) => {
                    flags |= v;
                    rest = &rest[2..];
                }
                None => return self.err(format!("unknown ACE flags {:?}", f[1])),
            }
        }
        let r = f[2].trim();
        let mask = if let Some(h) = r.strip_prefix("0x").or_else(|| r.strip_prefix("0X")) {
            u32::from_str_radix(h, 16).or_else(|_| self.err(format!("bad hex rights {r:?}")))?
        } else if !r.is_empty() && r.bytes().all(|c| c.is_ascii_digit()) {
            r.parse().or_else(|_| self.err(format!("bad rights {r:?}")))?
        } else {
            let mut m = 0u32;
            let mut rest = r;
            while !rest.is_empty() {
                let tok = rest.get(..2).unwrap_or(rest);
                match FILE_RIGHTS.iter().chain(RIGHTS).chain(EXTRA_RIGHTS).find(|(n, _)| n.eq_ignore_ascii_case(tok)) {
                    Some((_, v)) => m |= v,
                    None => return self.err(format!("unknown access right {tok:?}")),
                }
                rest = rest.get(2..).unwrap_or("");
            }
            m
        };
        let guid = |s: &str| -> Result<Option<[u8; 16]>, SddlError> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            parse_guid(s).map(Some).map_or_else(|| self.err(format!("bad GUID {s:?}")), Ok)
        };
        let (ot, it) = (guid(f[3])?, guid(f[4])?);
        let object = if is_object_ace(ace_type) {
            Some(ObjectTypes { object_type: ot, inherited_object_type: it })
        } else if ot.is_some() || it.is_some() {
            return self.err("object GUIDs on a non-object ACE");
        } else {
            None
        };
        let sid = self.sid(f[5])?;
        Ok(Ace { ace_type, flags, mask, object, sid, extra: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDDL: &str = "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICIIO;GA;;;CO)(A;;0x1200a9;;;WD)(D;;FW;;;S-1-5-21-1-2-3-1001)S:AI(AU;SAFA;FA;;;WD)";

    #[test]
    fn sddl_round_trip_through_binary() {
        let sd = SecurityDescriptor::from_sddl(SDDL).unwrap();
        let bytes = sd.to_bytes();
        let back = SecurityDescriptor::parse(&bytes).unwrap();
        assert_eq!(back, sd);
        assert_eq!(back.to_sddl().unwrap(), SDDL);
        assert_eq!(back.control & (SE_DACL_PROTECTED | SE_DACL_AUTO_INHERITED | SE_SACL_AUTO_INHERITED | SE_DACL_PRESENT | SE_SACL_PRESENT | SE_SELF_RELATIVE),
            SE_DACL_PROTECTED | SE_DACL_AUTO_INHERITED | SE_SACL_AUTO_INHERITED | SE_DACL_PRESENT | SE_SACL_PRESENT | SE_SELF_RELATIVE);
    }

    #[test]
    fn known_binary_form() {
        // O:SY alone: header + S-1-5-18.
        let b = SecurityDescriptor::from_sddl("O:SY").unwrap().to_bytes();
        assert_eq!(b, [1, 0, 0, 0x80, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]);
    }

    #[test]
    fn rights_rendering() {
        assert_eq!(rights_to_sddl(0x1F01FF), "FA");
        assert_eq!(rights_to_sddl(0x10000000), "GA");
        assert_eq!(rights_to_sddl(0x00020000 | 0x1), "RCCC");
        assert_eq!(rights_to_sddl(0x1200a9), "0x1200a9");
        let sd = SecurityDescriptor::from_sddl("D:(A;;RCCC;;;BU)(OA;CI;RP;bf967aba-0de6-11d0-a285-00aa003049e2;;AU)").unwrap();
        let s = SecurityDescriptor::parse(&sd.to_bytes()).unwrap().to_sddl().unwrap();
        assert_eq!(s, "D:(A;;RCCC;;;BU)(OA;CI;RP;bf967aba-0de6-11d0-a285-00aa003049e2;;AU)");
    }

    #[test]
    fn null_and_empty_dacl() {
        let n = SecurityDescriptor::from_sddl("D:NO_ACCESS_CONTROL").unwrap();
        assert!(n.dacl.is_none() && n.control & SE_DACL_PRESENT != 0);
        assert_eq!(SecurityDescriptor::parse(&n.to_bytes()).unwrap().to_sddl().unwrap(), "D:NO_ACCESS_CONTROL");
        let e = SecurityDescriptor::from_sddl("D:").unwrap();
        assert_eq!(e.dacl.as_ref().map(|a| a.aces.len()), Some(0));
    }

    #[test]
    fn sddl_errors() {
        for bad in ["X:BA", "O:ZZ", "D:(A;;FA;;SY)", "D:(Q;;FA;;;SY)", "D:(A;QQ;FA;;;SY)", "D:(A;;ZZ;;;SY)", "D:(A;;FA;;;SY"] {
            assert!(SecurityDescriptor::from_sddl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_rejects_bad_binaries() {
        let good = SecurityDescriptor::from_sddl(SDDL).unwrap().to_bytes();
        assert!(matches!(SecurityDescriptor::parse(&good[..10]), Err(SdError::TooShort { .. })));
        let mut b = good.clone();
        b[0] = 2;
        assert!(matches!(SecurityDescriptor::parse(&b), Err(SdError::BadRevision { found: 2 })));
        let mut b = good.clone();
        b[3] = 0;
        assert!(matches!(SecurityDescriptor::parse(&b), Err(SdError::NotSelfRelative { .. })));
        let mut b = good.clone();
        b[4..8].copy_from_slice(&5000u32.to_le_bytes());
        assert!(matches!(SecurityDescriptor::parse(&b), Err(SdError::OffsetOutOfRange { what: "owner", .. })));
        // DACL size larger than the descriptor.
        let dacl = u32::from_le_bytes(good[16..20].try_into().unwrap()) as usize;
        let mut b = good.clone();
        b[dacl + 2..dacl + 4].copy_from_slice(&0xFFF0u16.to_le_bytes());
        assert!(matches!(SecurityDescriptor::parse(&b), Err(SdError::BadAcl { .. })));
        // ACE count larger than what fits.
        let mut b = good.clone();
        b[dacl + 4] = 50;
        assert!(matches!(SecurityDescriptor::parse(&b), Err(SdError::BadAce { .. })));
        // Every truncation and byte flip: an error or a valid parse, no panic.
        for cut in 0..good.len() {
            let _ = SecurityDescriptor::parse(&good[..cut]);
        }
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xff;
            let _ = SecurityDescriptor::parse(&b).map(|sd| sd.to_sddl());
        }
    }
}
