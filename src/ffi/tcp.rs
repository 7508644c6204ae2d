//! TCP at the edges where std falls short:
//! - [`send_record`]: a write that ends a record (`MSG_EOR`): Linux never
//!   appends a later write to its segment, so each DCE/RPC PDU leaves in
//!   segments of its own. Packet analyzers need that: tshark decrypts at
//!   most one NTLMSSP-sealed PDU per frame (one decrypted payload per
//!   packet in its NTLMSSP dissector), and on loopback a segment can carry
//!   64 KiB of coalesced writes.
//! - [`connect_with_mss`]: a connection with `TCP_MAXSEG` set before
//!   `connect`.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::FromRawFd;

/// Writes all of `buf` to `stream`, each send flagged `MSG_EOR`. The
/// stream's write timeout bounds the whole record, not each partial send,
/// so a peer reading a trickle cannot hold the writer indefinitely.
pub fn send_record(stream: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let deadline = stream.write_timeout()?.map(|t| std::time::Instant::now() + t);
    while !buf.is_empty() {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the peer does not read"));
        }
        // SAFETY: `buf` is valid for `buf.len()` bytes during the call;
        // `fd` is the open socket `stream` owns.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_EOR | libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Connects to `host:port` with `TCP_MAXSEG` = `mss` set first.
pub fn connect_with_mss(host: &str, port: u16, mss: u32) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
    for addr in (host, port).to_socket_addrs()? {
        match connect_one(&addr, mss) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn connect_one(addr: &SocketAddr, mss: u32) -> io::Result<TcpStream> {
    let (family, storage, len) = sockaddr(addr);
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a socket we own; from here it is closed by the
    // TcpStream's drop on every path.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let v = mss as libc::c_int;
    // SAFETY: `v` outlives the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `storage` holds a sockaddr of `len` bytes for `family`.
    let rc = unsafe { libc::connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stream)
}

fn sockaddr(addr: &SocketAddr) -> (libc::c_int, libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage; both are plain data.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            (libc::AF_INET, storage, std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage; both are plain data.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            (libc::AF_INET6, storage, std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_arrive_whole() {
        use std::io::Read;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut peer, _) = l.accept().unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        send_record(&s, &big).unwrap();
        send_record(&s, b"tail").unwrap();
        drop(s);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), big.len() + 4);
        assert!(got[..big.len()] == big[..] && &got[big.len()..] == b"tail");
    }

    #[test]
    fn connects_with_a_small_mss() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let s = connect_with_mss("127.0.0.1", port, 1000).unwrap();
        let (peer, _) = l.accept().unwrap();
        assert_eq!(s.peer_addr().unwrap(), peer.local_addr().unwrap());
        // Nobody listening: the error is the connect's.
        drop(l);
        assert!(connect_with_mss("127.0.0.1", port, 1000).is_err());
    }
}
