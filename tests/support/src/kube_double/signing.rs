//! The service-account signing key: ES256 on P-256 (a real API server accepts ECDSA
//! `--service-account-key-file`s too), its JWKS, and compact JWS sign/verify.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use serde_json::{Value, json};

pub(crate) struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    public_pem: String,
    /// Affine coordinates of the public point, base64url, for the JWK.
    x: String,
    y: String,
}

/// Why a signed token was rejected, in go-jose's words (what the API server reports).
pub(crate) enum VerifyError {
    NoKey,
    BadSignature,
}

impl VerifyError {
    pub(crate) fn message(&self) -> &'static str {
        match self {
            VerifyError::NoKey => "invalid signature, no keys found",
            VerifyError::BadSignature => "go-jose/go-jose: error in cryptographic primitive",
        }
    }
}

impl Signer {
    pub(crate) fn generate() -> Signer {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key");
        // Uncompressed SEC1 point: 0x04 || X (32 bytes) || Y (32 bytes).
        let point = key.public_key_raw();
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        // Real clusters derive the kid from a hash of the public key; any stable,
        // unguessable id serves clients the same way (they match it against the JWKS).
        let kid = URL_SAFE_NO_PAD.encode((0..32).map(|_| fastrand::u8(..)).collect::<Vec<u8>>());
        Signer {
            encoding: EncodingKey::from_ec_der(&key.serialize_der()),
            decoding: DecodingKey::from_ec_der(point),
            kid,
            public_pem: key.public_key_pem(),
            x,
            y,
        }
    }

    /// Compact JWS with `alg` and `kid` only, like the API server's tokens (no `typ`).
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = None;
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign JWT")
    }

    /// Checks the signature only; the caller applies Kubernetes' own claim rules so the
    /// errors read like the real ones.
    pub(crate) fn verify(&self, token: &str) -> Result<Value, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::BadSignature)?;
        if header.kid.as_ref().is_some_and(|kid| kid != &self.kid) {
            return Err(VerifyError::NoKey);
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| VerifyError::BadSignature)
    }

    /// What `/openid/v1/jwks` serves.
    pub(crate) fn jwks(&self) -> Value {
        json!({
            "keys": [{
                "use": "sig",
                "kty": "EC",
                "kid": self.kid,
                "crv": "P-256",
                "alg": "ES256",
                "x": self.x,
                "y": self.y,
            }]
        })
    }

    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub(crate) fn public_key_pem(&self) -> String {
        self.public_pem.clone()
    }
}

/// The unverified `iss` of a compact JWT: the API server only tries its service-account
/// authenticator on tokens that claim its issuer.
pub(crate) fn unverified_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let signer = Signer::generate();
        let token = signer.sign(&json!({"iss": "https://x", "sub": "s"}));
        assert_eq!(signer.verify(&token).ok().unwrap()["sub"], "s");
        assert_eq!(unverified_issuer(&token).as_deref(), Some("https://x"));
        let other = Signer::generate();
        assert!(other.verify(&token).is_err());
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(signer.kid.as_str()));
        assert!(header.typ.is_none());
    }
}
