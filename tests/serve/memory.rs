//! Scanning a process's memory for secrets, through /proc/PID/maps and /proc/PID/mem
//! (the test runs as root, which may read a non-dumpable process).

use std::io::{Read, Seek, SeekFrom};

use base64::Engine;

pub struct Scan {
    pub found: Vec<bool>,
    pub bytes_read: usize,
}

/// The secret itself, the whole document in base64 (as Vault sent it), and the secret's
/// base64 at each of the three alignments it can have inside a longer encoding.
pub fn needles(secret: &[u8], document: &[u8]) -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = vec![secret.to_vec(), b64.encode(document).into_bytes()];
    for pad in 0..3 {
        let mut shifted = vec![b'x'; pad];
        shifted.extend_from_slice(secret);
        let encoded = b64.encode(&shifted);
        // Drop the characters that depend on the neighbours.
        out.push(encoded.as_bytes()[4..encoded.len() - 4].to_vec());
    }
    out
}

pub fn scan(pid: u32, needles: &[Vec<u8>]) -> Scan {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .expect("read maps (run the tests as root)");
    let mut mem =
        std::fs::File::open(format!("/proc/{pid}/mem")).expect("open mem (run the tests as root)");
    let mut found = vec![false; needles.len()];
    let mut bytes_read = 0;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.contains("[vvar") || line.contains("[vsyscall]") {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut region = vec![0u8; (end - start) as usize];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut region).is_err() {
            continue;
        }
        bytes_read += region.len();
        for (i, needle) in needles.iter().enumerate() {
            if !found[i] && memchr::memmem::find(&region, needle).is_some() {
                found[i] = true;
            }
        }
    }
    Scan { found, bytes_read }
}
