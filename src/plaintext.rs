//! The one type that holds decrypted bytes.
//!
//! [`Plaintext`] has no `Debug`, `Display` or `Clone` that could copy or print its
//! content; it is zeroed when dropped. Everything that touches a secret value goes
//! through it, so a grep for `expose` finds every place plaintext is read.

use zeroize::{Zeroize, Zeroizing};

/// Decrypted secret material. Zeroed on drop; never printed.
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    /// Take ownership of `bytes`; they are wiped when the `Plaintext` is dropped.
    pub fn new(bytes: Vec<u8>) -> Plaintext {
        Plaintext(Zeroizing::new(bytes))
    }

    /// Decode standard base64 (as Vault returns it) straight into a `Plaintext`.
    /// The input is not kept.
    pub fn from_base64(encoded: &[u8]) -> Result<Plaintext, base64::DecodeError> {
        use base64::Engine;
        let mut out = Zeroizing::new(Vec::with_capacity(encoded.len() / 4 * 3 + 3));
        base64::engine::general_purpose::STANDARD.decode_vec(encoded, &mut out)?;
        Ok(Plaintext(out))
    }

    /// The secret bytes. Callers must not copy them into anything that outlives this value
    /// without wiping it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret bytes as standard base64, in a buffer that is wiped on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        use base64::Engine;
        let mut out = Zeroizing::new(String::with_capacity(self.0.len() / 3 * 4 + 4));
        base64::engine::general_purpose::STANDARD.encode_string(&self.0[..], &mut out);
        out
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Wipe now rather than at drop.
    pub fn wipe(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plaintext([REDACTED {} bytes])", self.0.len())
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
    }

    #[test]
    fn base64_round_trip() {
        let p = Plaintext::from_base64(b"aGVsbG8=").unwrap();
        assert_eq!(p.expose(), b"hello");
        assert_eq!(p.to_base64().as_str(), "aGVsbG8=");
    }

    #[test]
    fn wipe_clears_content() {
        let mut p = Plaintext::new(b"abc".to_vec());
        p.wipe();
        assert!(p.is_empty());
    }
}
