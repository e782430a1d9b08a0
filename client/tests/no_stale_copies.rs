//! Building, converting and dropping plaintext leaves no copy of it in freed memory.
//!
//! The allocator below looks into every block as it is freed and counts the blocks
//! that still hold a sentinel. Its `realloc` is the trait's default (allocate, copy,
//! free), so a buffer that grows or shrinks shows the block it left behind, where the
//! system allocator might move or shrink it out of sight. The library itself denies
//! unsafe code; implementing an allocator needs it, here only.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use secret_zero_client::{Plaintext, PlaintextBuf, dotenv, key_value};
use zeroize::{Zeroize, Zeroizing};

/// Never written anywhere but into the buffers under test.
const SENTINEL: &[u8; 18] = b"<sz-sentinel-9f3a>";

static STALE: AtomicUsize = AtomicUsize::new(0);

struct Scanning;

unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the block is ours until `System.dealloc` below, and `layout.size()`
        // bytes of it were allocated.
        let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
        if block.windows(SENTINEL.len()).any(|w| w == SENTINEL) {
            STALE.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

fn stale() -> usize {
    STALE.swap(0, Ordering::SeqCst)
}

/// A vector holding the sentinel, with `spare` bytes of capacity beyond it.
fn sentinel_vec(spare: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SENTINEL.len() + spare);
    bytes.extend_from_slice(SENTINEL);
    bytes
}

// One test function: the counter is global, and parallel tests would share it.
#[test]
fn plaintext_leaves_nothing_behind() {
    // The scanner sees what it should: a plain Vec is freed with its content, and
    // `into_boxed_slice` on a Vec with spare capacity frees the old block unwiped.
    drop(sentinel_vec(0));
    assert_eq!(stale(), 1, "the scanner does not see freed content");
    let mut boxed = sentinel_vec(100).into_boxed_slice();
    assert_eq!(stale(), 1, "into_boxed_slice was expected to leave a copy");
    boxed.zeroize();
    drop(boxed);
    assert_eq!(stale(), 0);

    // Vec -> Plaintext, with and without spare capacity, then dropped.
    drop(Plaintext::new(sentinel_vec(100)));
    assert_eq!(stale(), 0, "Plaintext::new with spare capacity");
    // Truncated bytes stay in the spare capacity: they must be wiped too.
    let mut truncated = sentinel_vec(SENTINEL.len());
    truncated.extend_from_slice(SENTINEL);
    truncated.truncate(SENTINEL.len());
    drop(Plaintext::new(truncated));
    assert_eq!(stale(), 0, "Plaintext::new of a truncated Vec");
    let exact = sentinel_vec(0);
    assert_eq!(exact.capacity(), exact.len());
    drop(Plaintext::new(exact));
    assert_eq!(stale(), 0, "Plaintext::new without spare capacity");

    let mut p = Plaintext::new(sentinel_vec(3));
    p.wipe();
    assert!(p.is_empty());
    assert_eq!(stale(), 0, "wipe");
    drop(p);

    // The builder: growth from a tiny capacity, discarding, truncating, finishing.
    let mut buf = PlaintextBuf::with_capacity(1);
    buf.extend_from_slice(b"head ");
    buf.extend_from_slice(SENTINEL);
    for _ in 0..200 {
        buf.extend_from_slice(SENTINEL);
        buf.push(b' ');
    }
    buf.discard_front(5);
    buf.truncate(SENTINEL.len() * 3);
    assert_eq!(stale(), 0, "PlaintextBuf growth");
    let p = buf.into_plaintext();
    assert_eq!(&p.expose()[..SENTINEL.len()], SENTINEL);
    assert_eq!(stale(), 0, "PlaintextBuf::into_plaintext");
    drop(p);
    assert_eq!(stale(), 0);

    // Base64 both ways.
    let p = Plaintext::new(sentinel_vec(0));
    let encoded = p.to_base64();
    let decoded = Plaintext::from_base64(encoded.as_bytes()).unwrap();
    assert_eq!(decoded.expose(), SENTINEL);
    drop((p, encoded, decoded));
    assert_eq!(stale(), 0, "base64");

    // Rendering: a document with the sentinel as a plain (unescaped) string value.
    let mut doc = Zeroizing::new(Vec::with_capacity(64));
    doc.extend_from_slice(br#"{"K": ""#);
    doc.extend_from_slice(SENTINEL);
    doc.extend_from_slice(br#"", "N": 1}"#);
    let lines = dotenv(&doc).unwrap();
    assert!(
        lines
            .expose()
            .windows(SENTINEL.len())
            .any(|w| w == SENTINEL)
    );
    let value = key_value(&doc, "K").unwrap();
    assert_eq!(value.expose(), SENTINEL);
    drop((lines, value));
    drop(doc);
    assert_eq!(stale(), 0, "dotenv / key_value");

    // The socket client: the answer is read into the wiping builder, cut, and handed
    // over as a Document, then rendered.
    const BODY: &[u8] = b"{\"K\":\"<sz-sentinel-9f3a>\",\"pad\":\"..........................\"}";
    let socket = agent_once(BODY);
    let document = secret_zero_client::fetch_json_blocking(&socket).unwrap();
    assert_eq!(document.bytes(), BODY);
    let value = document.key("K").unwrap();
    assert_eq!(value.expose(), SENTINEL);
    let keys = document.keys().unwrap();
    assert_eq!(keys, ["K", "pad"]);
    drop((document, value, keys));
    assert_eq!(stale(), 0, "fetch_json_blocking");
}

/// Answers one request on a fresh abstract socket with `body`, written straight from
/// static memory so that the only heap copies are the client's.
fn agent_once(body: &'static [u8]) -> secret_zero_client::SocketSpec {
    use std::io::{Read, Write};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let name = format!("secret-zero-client-stale-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let mut seen = 0;
        while !request[..seen].ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut request[seen..]).unwrap();
            assert!(n > 0);
            seen += n;
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
    });
    secret_zero_client::SocketSpec::Abstract(name)
}
