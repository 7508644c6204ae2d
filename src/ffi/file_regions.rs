//! The data regions of a local file (`lseek` SEEK_DATA / SEEK_HOLE), so a
//! sparse file is staged as sparse blocks (MS-BKUP BACKUP_SPARSE_BLOCK)
//! and its holes stay holes.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;

fn seek(f: &File, offset: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    let off = libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: lseek on a descriptor `f` keeps open for the call; no memory
    // is passed.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off, whence) };
    if r >= 0 {
        return Ok(Some(r as u64));
    }
    let e = io::Error::last_os_error();
    // ENXIO: no data (or hole) at or after `offset`.
    if e.raw_os_error() == Some(libc::ENXIO) {
        Ok(None)
    } else {
        Err(e)
    }
}

/// `(offset, length)` of each region holding data, in order, up to `size`.
/// A file system without hole reporting returns one region: all of it.
pub fn data_regions(f: &File, size: u64) -> io::Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut at = 0u64;
    while at < size {
        let Some(start) = seek(f, at, libc::SEEK_DATA)? else { break };
        if start >= size {
            break;
        }
        let end = seek(f, start, libc::SEEK_HOLE)?.unwrap_or(size).min(size);
        out.push((start, end - start));
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn holes_are_skipped_and_data_found() {
        let path = std::env::temp_dir().join(format!("dfsr-regions-{}", std::process::id()));
        let mut f = File::create(&path).unwrap();
        f.seek(SeekFrom::Start(1 << 20)).unwrap();
        f.write_all(&[1u8; 4096]).unwrap();
        f.set_len(4 << 20).unwrap();
        drop(f);
        let f = File::open(&path).unwrap();
        let r = data_regions(&f, 4 << 20).unwrap();
        std::fs::remove_file(&path).unwrap();
        // tmpfs and ext4 report the hole; the data region covers the write.
        let covered: u64 = r.iter().map(|x| x.1).sum();
        assert!(r.iter().any(|&(o, l)| o <= 1 << 20 && o + l >= (1 << 20) + 4096), "{r:?}");
        assert!(covered < 4 << 20, "no hole reported: {r:?}");
    }
}
