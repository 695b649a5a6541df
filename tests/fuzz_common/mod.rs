//! How the fuzz harnesses hand a file's bytes to a reader, shared by `fuzz_idx` and
//! `fuzz_ctr` (and so by their fuzz targets and the tests that replay their findings):
//! plain or gzip'd in the ways real files are, and through a source that hands out a few
//! bytes per `read`.

use std::io::{self, Read, Write};

use flate2::write::GzEncoder;
use flate2::Compression;

/// `bytes` gzip'd as one member.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder
        .write_all(bytes)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// The file as the reader sees it, per bits 0-1 of the harness's control byte: 0 the
/// bytes as they are, 1 gzip'd, 2 gzip'd as two members, 3 the first half gzip'd and
/// the second half after it as it is.
pub fn presented(encoding: u8, bytes: &[u8]) -> Vec<u8> {
    let (front, back) = bytes.split_at(bytes.len() / 2);
    match encoding {
        0 => bytes.to_vec(),
        1 => gzip(bytes),
        2 => [gzip(front), gzip(back)].concat(),
        _ => [gzip(front), back.to_vec()].concat(),
    }
}

/// A source that hands out at most 7 bytes per `read`, like a pipe.
pub struct SmallReads<'a>(pub &'a [u8]);

impl Read for SmallReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}
