//! Random bytes from the kernel: the one source for new database GUIDs and
//! unguessable context handles. An edge (it reads `/dev/urandom`); the pure
//! layers take the bytes as arguments ([`crate::engine::ids::Guid::from_random`]).

use crate::engine::ids::Guid;
use std::io::{self, Read};

/// `N` random bytes.
pub fn bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// A new random GUID (a new database's identity).
pub fn new_guid() -> io::Result<Guid> {
    Ok(Guid::from_random(bytes()?))
}
