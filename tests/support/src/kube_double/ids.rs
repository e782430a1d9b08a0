//! Random identifiers: object UIDs (UUID v4, as the API server assigns) and opaque
//! bearer tokens.

/// A random RFC 4122 version-4 UUID, the format of `metadata.uid` and JWT `jti`.
pub(crate) fn new_uid() -> String {
    let mut bytes = [0u8; 16];
    bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An opaque static bearer token (like a `--token-auth-file` entry).
pub(crate) fn new_token() -> String {
    (0..40)
        .map(|_| fastrand::alphanumeric())
        .collect::<String>()
}

/// Five lowercase alphanumerics, the suffix the API server appends for `generateName`.
pub(crate) fn name_suffix() -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| CHARS[fastrand::usize(..CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn uid_is_uuid_v4() {
        let uid = super::new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "4");
        assert_ne!(uid, super::new_uid());
    }
}
