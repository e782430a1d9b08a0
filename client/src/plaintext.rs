//! The one type that owns decrypted bytes, and the one way to build it piece by piece.
//!
//! [`Plaintext`] has no `Display` or `Clone` that could copy or print its content, and
//! its `Debug` shows only the length; it is zeroed when dropped. Its one accessor is
//! [`Plaintext::expose`] (and [`PlaintextBuf::expose`] while it is being built), so a
//! grep for `.expose()` finds every read of plaintext.
//!
//! The bytes live in a `secrecy::SecretBox<[u8]>`, the same idiom the tokens use. A
//! boxed slice has no spare capacity, so getting there from a `Vec` is where stale
//! copies could be left: `Vec::into_boxed_slice` reallocates when the capacity is larger
//! than the length and frees the old block unwiped. [`Plaintext::new`] copies into an
//! exact-size block instead and wipes the whole `Vec`, capacity included.

use secrecy::{ExposeSecret, SecretBox};
use zeroize::{Zeroize, Zeroizing};

/// Decrypted secret material. Zeroed on drop; never printed.
pub struct Plaintext(SecretBox<[u8]>);

impl Plaintext {
    /// Take ownership of `bytes`; they are wiped when the `Plaintext` is dropped. Any
    /// spare capacity of `bytes` is wiped now.
    pub fn new(bytes: Vec<u8>) -> Plaintext {
        Plaintext(SecretBox::new(exact_box(bytes)))
    }

    /// Decode standard base64 (as Vault returns it) straight into a `Plaintext`.
    /// The input is not kept.
    pub fn from_base64(encoded: &[u8]) -> Result<Plaintext, InvalidBase64> {
        use base64::Engine;
        let engine = &base64::engine::general_purpose::STANDARD;
        // Decoding into a buffer of the final size would need the padding-exact length
        // up front; the estimate is at most 2 bytes over, and `new` wipes the spare.
        let mut out = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(encoded.len())]);
        let len = engine
            .decode_slice(encoded, &mut out[..])
            .map_err(|_| InvalidBase64)?;
        out.truncate(len);
        Ok(Plaintext::new(std::mem::take(&mut *out)))
    }

    /// The secret bytes. Callers must not copy them into anything that outlives this value
    /// without wiping it.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// The secret bytes as standard base64, in a buffer sized exactly (so it never grows
    /// and leaves a copy behind) and wiped on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        use base64::Engine;
        let bytes = self.expose();
        let size = base64::encoded_len(bytes.len(), true).unwrap_or(0);
        let mut out = Zeroizing::new(String::with_capacity(size));
        base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut out);
        out
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Whether there are no bytes (also true after [`Plaintext::wipe`]).
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }

    /// Wipe now rather than at drop; the value is empty afterwards.
    pub fn wipe(&mut self) {
        // The old box is zeroized as it drops.
        self.0 = SecretBox::default();
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plaintext([REDACTED {} bytes])", self.len())
    }
}

impl From<PlaintextBuf> for Plaintext {
    fn from(buf: PlaintextBuf) -> Plaintext {
        buf.into_plaintext()
    }
}

/// Base64 that does not decode. Says nothing about the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not valid base64")]
pub struct InvalidBase64;

/// `bytes` as a boxed slice without leaving an unwiped copy on the heap.
fn exact_box(mut bytes: Vec<u8>) -> Box<[u8]> {
    if bytes.capacity() == bytes.len() {
        // No reallocation: the block itself becomes the box.
        return bytes.into_boxed_slice();
    }
    // `vec![0; n]` allocates exactly `n`, so this `into_boxed_slice` does not reallocate.
    let mut exact = vec![0u8; bytes.len()].into_boxed_slice();
    exact.copy_from_slice(&bytes);
    // Wipes the length and the spare capacity, which may hold bytes truncated earlier.
    bytes.zeroize();
    exact
}

/// A growable buffer for plaintext, the only way to build a [`Plaintext`] piece by
/// piece (an HTTP answer as it arrives, a rendered dotenv file, a converted document).
///
/// Growing copies the content into a fresh allocation and wipes the old one, where
/// `Vec::reserve` would `realloc` and may free the old block unwiped; the whole
/// capacity is wiped on drop. It implements [`std::io::Write`], so serializers can
/// write into it.
pub struct PlaintextBuf(Zeroizing<Vec<u8>>);

impl PlaintextBuf {
    /// An empty buffer with room for `capacity` bytes before it has to grow.
    pub fn with_capacity(capacity: usize) -> PlaintextBuf {
        PlaintextBuf(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    /// Append `bytes`, growing without leaving the old content on the heap.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    /// Append one byte.
    pub fn push(&mut self, byte: u8) {
        self.reserve(1);
        self.0.push(byte);
    }

    /// Make room for `additional` more bytes, copying into a new zeroizing block when
    /// the current one is too small.
    pub fn reserve(&mut self, additional: usize) {
        let needed = self.0.len().saturating_add(additional);
        if needed <= self.0.capacity() {
            return;
        }
        let capacity = needed.max(self.0.capacity().saturating_mul(2)).max(64);
        let mut grown = Zeroizing::new(Vec::with_capacity(capacity));
        grown.extend_from_slice(&self.0);
        // The old block is wiped as `grown` replaces it.
        self.0 = grown;
    }

    /// Drop the first `n` bytes, shifting the rest down in place (no new allocation).
    pub fn discard_front(&mut self, n: usize) {
        let n = n.min(self.0.len());
        self.0.copy_within(n.., 0);
        let len = self.0.len() - n;
        // The tail beyond `len` still holds shifted bytes; zero them before truncating.
        self.0[len..].fill(0);
        self.0.truncate(len);
    }

    /// Keep only the first `len` bytes, wiping the rest.
    pub fn truncate(&mut self, len: usize) {
        if len < self.0.len() {
            self.0[len..].fill(0);
            self.0.truncate(len);
        }
    }

    /// The bytes so far. The same rule as [`Plaintext::expose`] applies.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The number of bytes so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The finished [`Plaintext`]. When the buffer has spare capacity the bytes are
    /// copied into an exact-size block and the whole buffer is wiped.
    pub fn into_plaintext(mut self) -> Plaintext {
        Plaintext::new(std::mem::take(&mut *self.0))
    }
}

impl std::fmt::Debug for PlaintextBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlaintextBuf([REDACTED {} bytes])", self.len())
    }
}

impl std::io::Write for PlaintextBuf {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_content() {
        let p = Plaintext::new(b"hunter2-sentinel".to_vec());
        let shown = format!("{p:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("REDACTED"));
        let mut buf = PlaintextBuf::with_capacity(4);
        buf.extend_from_slice(b"hunter2");
        let shown = format!("{buf:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("REDACTED"),
            "{shown}"
        );
    }

    #[test]
    fn base64_round_trip() {
        for (text, encoded) in [
            (&b""[..], ""),
            (b"h", "aA=="),
            (b"he", "aGU="),
            (b"hello", "aGVsbG8="),
            (b"hello!", "aGVsbG8h"),
        ] {
            let p = Plaintext::from_base64(encoded.as_bytes()).unwrap();
            assert_eq!(p.expose(), text);
            let back = p.to_base64();
            assert_eq!(back.as_str(), encoded);
            // Sized exactly: encoding never had to grow the string.
            assert_eq!(back.capacity(), encoded.len());
        }
        assert!(matches!(
            Plaintext::from_base64(b"a!=="),
            Err(InvalidBase64)
        ));
    }

    #[test]
    fn wipe_clears_content() {
        let mut p = Plaintext::new(b"abc".to_vec());
        p.wipe();
        assert!(p.is_empty());
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn a_vec_with_spare_capacity_becomes_an_exact_plaintext() {
        let mut bytes = Vec::with_capacity(100);
        bytes.extend_from_slice(b"0123456789");
        bytes.truncate(4);
        let p = Plaintext::new(bytes);
        assert_eq!(p.expose(), b"0123");

        let exact = b"exact".to_vec();
        assert_eq!(exact.capacity(), exact.len());
        let pointer = exact.as_ptr();
        let p = Plaintext::new(exact);
        // No spare capacity: the block itself is kept, nothing was copied.
        assert_eq!(p.expose().as_ptr(), pointer);
        assert_eq!(p.expose(), b"exact");
    }

    #[test]
    fn exact_box_wipes_the_vec_it_copied_from() {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(b"secret-bytes");
        let boxed = exact_box(std::mem::take(&mut bytes));
        assert_eq!(&boxed[..], b"secret-bytes");
        assert_eq!(boxed.len(), 12);
        // What the old block held is checked by tests/no_stale_copies.rs, which can see
        // freed memory; here only the result can be.
    }

    #[test]
    fn buf_grows_discards_and_finishes() {
        let mut buf = PlaintextBuf::with_capacity(1);
        for _ in 0..100 {
            buf.extend_from_slice(b"abc");
        }
        assert_eq!(buf.len(), 300);
        buf.discard_front(297);
        assert_eq!(buf.expose(), b"abc");
        buf.truncate(1);
        assert_eq!(buf.expose(), b"a");
        buf.push(b'b');
        std::io::Write::write_all(&mut buf, b"cd").unwrap();
        let p = buf.into_plaintext();
        assert_eq!(p.expose(), b"abcd");
    }
}
