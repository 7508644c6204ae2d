//! The staged-file writer (MS-FRS2 §3.2.4.1.14): a file's metadata, its
//! security descriptor, reparse data, main data (plain or as sparse
//! blocks) and alternate streams, marshaled and framed in FRSX/XBLO, with
//! the DFS-R hash of the marshaled bytes. Sans-IO: the caller opens the
//! sources and the output ([`crate::store::staged_file`] does, from files).

use super::frsx::FrsxWriter;
use super::marshal::{MarshalWriter, Metadata, MARSHAL_VERSION};
use std::io::{self, Read, Write};

/// What a staged file says about its file besides the bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileHeader {
    /// A self-relative security descriptor.
    pub security: Option<Vec<u8>>,
    /// FILE_ATTRIBUTE_* bits.
    pub attributes: u32,
    /// creation, last access, last write, change (FILETIME).
    pub times: [i64; 4],
    /// A reparse data buffer.
    pub reparse: Option<Vec<u8>>,
}

/// The main data stream.
pub enum MainData<'a> {
    /// Read in order to the end: `size` bytes.
    Plain(&'a mut dyn Read),
    /// Only these `(offset, length)` regions hold data (the rest are
    /// holes); `read_at` fills a buffer from an offset.
    Sparse { regions: &'a [(u64, u64)], read_at: &'a mut dyn FnMut(u64, &mut [u8]) -> io::Result<()> },
}

/// An alternate data stream: its name (without `:` or `$DATA`), a reader and its size.
pub struct AlternateStream<'a> {
    pub name: &'a str,
    pub reader: &'a mut dyn Read,
    pub size: u64,
}

/// Which part failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Main,
    Stream(String),
    Output,
}

/// A read of a source or a write of the output failed.
#[derive(Debug, thiserror::Error)]
#[error("{part:?}: {source}")]
pub struct WriteError {
    pub part: Part,
    #[source]
    pub source: io::Error,
}

fn out_err(source: io::Error) -> WriteError {
    WriteError { part: Part::Output, source }
}

/// Writes a staged file of `size` bytes of main data to `out`; returns
/// `out` (flushed) and the DFS-R hash of the marshaled file.
pub fn write_staged<W: Write>(
    out: W,
    header: &FileHeader,
    size: u64,
    main: MainData<'_>,
    streams: &mut [AlternateStream<'_>],
) -> Result<(W, [u8; 20]), WriteError> {
    let sd_control = header.security.as_ref().filter(|s| s.len() >= 4).map_or(0, |s| u16::from_le_bytes([s[2], s[3]]));
    let meta = Metadata {
        version: MARSHAL_VERSION,
        creation_time: header.times[0],
        last_access_time: header.times[1],
        last_write_time: header.times[2],
        change_time: header.times[3],
        attributes: header.attributes,
        sd_control,
        primary_data_size: size,
    };
    let mut w = MarshalWriter::new(FrsxWriter::new(out));
    w.metadata(&meta).map_err(out_err)?;
    if let Some(r) = &header.reparse {
        w.reparse(r).map_err(out_err)?;
    }
    if let Some(sd) = &header.security {
        w.security(sd).map_err(out_err)?;
    }
    match main {
        MainData::Plain(r) => {
            // MarshalWriter copies the data and reports a read or a write
            // failure alike: it is reported as the input's.
            w.data(r, size).map_err(|source| WriteError { part: Part::Main, source })?
        }
        MainData::Sparse { regions, read_at } => {
            w.sparse_data().map_err(out_err)?;
            let mut buf = vec![0u8; 1 << 20];
            for &(start, len) in regions {
                let mut at = start;
                while at < start + len {
                    let n = (start + len - at).min(buf.len() as u64) as usize;
                    read_at(at, &mut buf[..n]).map_err(|source| WriteError { part: Part::Main, source })?;
                    w.sparse_block(at, &buf[..n]).map_err(out_err)?;
                    at += n as u64;
                }
            }
        }
    }
    for s in streams.iter_mut() {
        w.alternate(s.name, &mut *s.reader, s.size)
            .map_err(|source| WriteError { part: Part::Stream(s.name.to_owned()), source })?;
    }
    let (frsx, hash) = w.finish().map_err(out_err)?;
    let mut out = frsx.finish().map_err(out_err)?;
    out.flush().map_err(out_err)?;
    Ok((out, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staging::frsx::FrsxReader;
    use crate::staging::marshal::{Event, MarshalReader};

    #[test]
    fn written_file_reads_back_with_its_parts_and_hash() {
        let header = FileHeader { security: None, attributes: 0x20, times: [1, 2, 3, 4], reparse: None };
        let mut main: &[u8] = b"main data";
        let mut s1: &[u8] = b"stream";
        let mut streams = [AlternateStream { name: "one", reader: &mut s1, size: 6 }];
        let (bytes, hash) = write_staged(Vec::new(), &header, 9, MainData::Plain(&mut main), &mut streams).unwrap();
        assert_ne!(hash, [0; 20]);
        let mut r = MarshalReader::new(FrsxReader::new(&bytes[..]));
        let mut names = Vec::new();
        while let Some(ev) = r.next().unwrap() {
            match ev {
                Event::Metadata(m) => assert_eq!((m.attributes, m.last_write_time, m.primary_data_size), (0x20, 3, 9)),
                Event::StreamStart(h) => names.push(h.raw_name.clone()),
                _ => {}
            }
        }
        assert_eq!(names, vec![String::new(), ":one:$DATA".to_string()]);
    }

    #[test]
    fn a_short_source_is_blamed_on_that_source() {
        let header = FileHeader::default();
        let mut main: &[u8] = b"short";
        let e = write_staged(Vec::new(), &header, 100, MainData::Plain(&mut main), &mut []).unwrap_err();
        assert_eq!(e.part, Part::Main);
    }
}
