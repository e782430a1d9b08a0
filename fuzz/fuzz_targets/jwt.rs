//! The ServiceAccount token check (`src/vault/session.rs`): the JWT's `exp` claim, read
//! without verifying it, refuses an expired token before Vault is asked.
//!
//! Input: one control byte, then either the token as it is, or (control bit 0) the
//! claims of a token that is then built around them (header, base64url claims, a
//! signature).
//!
//! Properties:
//! - an accepted token is returned unchanged; an empty one is refused as empty;
//! - a refusal is exactly "the ServiceAccount token PATH is empty" or "... expired N s
//!   ago" with N a positive number: never any byte of the token;
//! - for claims that are an object with one integer `exp`: the token is refused as
//!   expired exactly when `exp` is before now, and N is how long before.
#![no_main]

use std::path::Path;

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use secrecy::{ExposeSecret, SecretString};
use secret_zero::fuzzing::vault::check_jwt;

const PATH: &str = "/var/run/secrets/tokens/vault";
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let [control, rest @ ..] = data else {
        return;
    };
    let (token, claims) = if control & 1 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        (text.trim().to_string(), None)
    } else {
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rest);
        let token = format!("eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.{encoded}.c2lnbmF0dXJl");
        (token, Some(rest))
    };
    let now = if control & 2 == 0 {
        NOW
    } else {
        i64::from(*control) << 56
    };
    let result = check_jwt(SecretString::from(token.clone()), Path::new(PATH), now);
    // How long ago, as said: at most i64::MAX seconds.
    let expired_by = claims
        .and_then(exp)
        .map(|exp| (exp < now).then(|| (i128::from(now) - i128::from(exp)).min(i64::MAX.into())));
    match result {
        Ok(jwt) => {
            assert_eq!(jwt.expose_secret(), token);
            assert!(!token.is_empty(), "an empty token was accepted");
            if let Some(Some(by)) = expired_by {
                panic!("a token expired {by} s ago was accepted");
            }
        }
        Err(e) => {
            let prefix = format!("the ServiceAccount token {PATH} ");
            let rest = e
                .message
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("unexpected message {:?}", e.message));
            if rest == "is empty" {
                assert!(token.is_empty());
                return;
            }
            let seconds = rest
                .strip_prefix("expired ")
                .and_then(|r| r.strip_suffix(" s ago"))
                .unwrap_or_else(|| panic!("unexpected message {:?}", e.message));
            let seconds: i128 = seconds
                .parse()
                .unwrap_or_else(|_| panic!("not a number of seconds: {:?}", e.message));
            assert!(seconds > 0, "expired {seconds} s ago");
            if let Some(by) = expired_by {
                assert_eq!(by, Some(seconds), "the expiry is misread");
            }
        }
    }
});

/// The `exp` of claims that are a JSON object with exactly one integer `exp`.
fn exp(claims: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(claims).ok()?;
    if text.matches("\"exp\"").count() != 1 {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.as_object()?.get("exp")?.as_i64()
}
