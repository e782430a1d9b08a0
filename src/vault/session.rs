//! One Vault session: log in (or take an operator's token), use the token, and revoke
//! it when the work is done. `serve` opens one per delivery; `seal` and `rotate` one
//! per run. A token we logged in for is ours to revoke; an operator's is left alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
// tokio's clock, as the retry loop's.
use tokio::time::Instant;

use super::auth::AuthMethod;
use super::client::Client;
use super::error::VaultError;
use super::token::VaultToken;
use crate::failure::InputError;
use crate::retry::{Backoff, retry};

/// How to log in with the pod's ServiceAccount token.
#[derive(Debug, Clone)]
pub struct LoginSpec {
    pub method: AuthMethod,
    pub mount: String,
    pub role: String,
    /// Re-read at every login: kubelet rotates it.
    pub token_file: PathBuf,
}

/// A client and the token to use with it.
pub struct Session {
    vault: Client,
    token: VaultToken,
    /// Set when we logged in ourselves: that token is ours to revoke.
    accessor: Option<String>,
    /// The uses the login granted (0: unlimited), as Vault said in its answer.
    num_uses: u64,
    /// How long the revoke keeps trying through transient faults: the login's pacing,
    /// and never past `expires`.
    backoff: Backoff,
    /// When the token dies by itself (its TTL, counted from the login's answer).
    expires: Option<Instant>,
}

impl Session {
    /// Log in as `spec` says, retrying transient faults. The JWT is read fresh from
    /// its file and dropped as soon as the login is answered.
    pub async fn login(
        vault: &Client,
        spec: &LoginSpec,
        backoff: Backoff,
    ) -> Result<Session, VaultError> {
        let jwt = read_jwt(&spec.token_file).map_err(VaultError::Credentials)?;
        let login = retry("vault login", backoff, || {
            vault.login(spec.method, &spec.mount, &spec.role, &jwt)
        })
        .await?;
        drop(jwt);
        tracing::info!(
            accessor = %login.accessor,
            policies = ?login.policies,
            ttl_s = login.lease_duration,
            num_uses = login.num_uses,
            "logged in to Vault"
        );
        let expires = (login.lease_duration > 0)
            .then(|| Instant::now() + Duration::from_secs(login.lease_duration));
        Ok(Session {
            vault: vault.clone(),
            token: login.token,
            accessor: Some(login.accessor),
            num_uses: login.num_uses,
            backoff,
            expires,
        })
    }

    /// Work with an operator's own token, which [`Session::close`] leaves alone.
    pub fn with_token(vault: Client, token: VaultToken) -> Session {
        Session {
            vault,
            token,
            accessor: None,
            num_uses: 0,
            backoff: Backoff::default(),
            expires: None,
        }
    }

    pub fn vault(&self) -> &Client {
        &self.vault
    }

    pub fn token(&self) -> &VaultToken {
        &self.token
    }

    /// Revoke the token if this session logged in. Transient faults (Vault restarting,
    /// unreachable for a moment) are retried for as long as the login was, but not past
    /// the token's TTL; a failure after that is logged, not returned: the token then
    /// expires with its short TTL, and the work it did stands.
    pub async fn close(self) {
        self.close_after(0).await;
    }

    /// [`close`](Self::close), after `used` requests with the token succeeded. When the
    /// login's answer said the token may make exactly that many (the role sets
    /// `token_num_uses`), Vault destroyed it on its last use and a revoke would be one
    /// more request for nothing: it is skipped. Otherwise the token is revoked.
    pub async fn close_after(self, used: u64) {
        let Some(accessor) = self.accessor else {
            return;
        };
        if self.num_uses != 0 && used >= self.num_uses {
            tracing::info!(
                %accessor,
                num_uses = self.num_uses,
                "Vault token used up: Vault destroyed it on its last use, no revoke needed"
            );
            return;
        }
        // Retrying past the token's own end would be for nothing: Vault revokes it then.
        let left = self
            .expires
            .map(|at| at.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            tracing::info!(%accessor, "Vault token expired by itself: no revoke needed");
            return;
        }
        let backoff = Backoff {
            timeout: left.map_or(self.backoff.timeout, |l| l.min(self.backoff.timeout)),
            ..self.backoff
        };
        let revoked = retry("vault revoke", backoff, || {
            self.vault.revoke_self(&self.token)
        })
        .await;
        match revoked {
            Ok(()) => tracing::info!(%accessor, "Vault token revoked"),
            Err(e) => tracing::warn!(
                %accessor,
                error = %e,
                "could not revoke the Vault token; it expires with its TTL"
            ),
        }
    }
}

/// Read the ServiceAccount token, fresh from the file each time (kubelet rotates it),
/// and refuse an empty or expired one with a message that says so.
pub fn read_jwt(path: &Path) -> Result<SecretString, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        InputError::new(
            format!(
                "cannot read the ServiceAccount token {}: {e}",
                path.display()
            ),
            "mount a projected ServiceAccount token (audience vault) there, or pass --token-file",
        )
    })?;
    let jwt = SecretString::from(text.trim().to_string());
    drop(zeroize::Zeroizing::new(text));
    check_jwt(jwt, path, now_secs())
}

/// Refuse an empty token, or one whose `exp` claim (read without verifying it) is
/// before `now`: each with a message that says which, naming `path`, never the token.
#[doc(hidden)]
pub fn check_jwt(jwt: SecretString, path: &Path, now: i64) -> Result<SecretString, InputError> {
    let token = secrecy::ExposeSecret::expose_secret(&jwt);
    if token.is_empty() {
        return Err(InputError::new(
            format!("the ServiceAccount token {} is empty", path.display()),
            "kubelet writes it when the pod starts; check the projected volume",
        ));
    }
    if let Some(exp) = jwt_expiry(token)
        && exp < now
    {
        return Err(InputError::new(
            format!(
                "the ServiceAccount token {} expired {} s ago",
                path.display(),
                now.saturating_sub(exp)
            ),
            "kubelet refreshes projected tokens; a stale file means the volume is not a projected token",
        ));
    }
    Ok(jwt)
}

/// The `exp` claim of a JWT, read without verifying it: only to explain a failure early.
fn jwt_expiry(jwt: &str) -> Option<i64> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: Option<i64>,
    }
    serde_json::from_slice::<Claims>(&bytes).ok()?.exp
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn token_with(claims: &str) -> SecretString {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims);
        SecretString::from(format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"))
    }

    #[test]
    fn an_expiry_long_past_is_refused_without_overflow() {
        // Found by the `jwt` fuzz target: `now - exp` overflowed for an `exp` near i64::MIN.
        let path = Path::new("/token");
        let e = check_jwt(
            token_with(r#"{"exp":-9223372036854775807}"#),
            path,
            1_800_000_000,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            format!("the ServiceAccount token /token expired {} s ago", i64::MAX)
        );
        let e = check_jwt(token_with(r#"{"exp":1799999990}"#), path, 1_800_000_000).unwrap_err();
        assert_eq!(
            e.message,
            "the ServiceAccount token /token expired 10 s ago"
        );
        assert!(check_jwt(token_with(r#"{"exp":1800000000}"#), path, 1_800_000_000).is_ok());
        assert!(check_jwt(SecretString::from(String::new()), path, 0).is_err());
    }
}
