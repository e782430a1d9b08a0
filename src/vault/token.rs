//! Vault tokens: held in memory only, never printed, and where they come from for an
//! operator (`--vault-token-file`, `VAULT_TOKEN`, `~/.vault-token`).

use std::path::{Path, PathBuf};

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::client::Client;
use super::error::VaultError;

/// A Vault token. Its `Debug` is redacted and it is zeroed on drop.
#[derive(Clone)]
pub struct VaultToken(SecretString);

impl VaultToken {
    pub fn new(token: impl Into<String>) -> VaultToken {
        VaultToken(SecretString::from(token.into()))
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for VaultToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultToken([REDACTED])")
    }
}

/// What `auth/token/lookup-self` says about a token (nothing secret).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenInfo {
    pub accessor: String,
    #[serde(default)]
    pub policies: Vec<String>,
    /// Seconds left; 0 for a root token that never expires.
    #[serde(default)]
    pub ttl: i64,
    /// Uses left; 0 means unlimited.
    #[serde(default)]
    pub num_uses: i64,
    #[serde(default)]
    pub display_name: String,
}

/// The operator's token: `--vault-token-file` if given, else `VAULT_TOKEN`, else
/// `~/.vault-token` — the order the Vault CLI uses.
pub fn operator_token(token_file: Option<&Path>) -> Result<VaultToken, VaultError> {
    if let Some(path) = token_file {
        return read_token_file(path);
    }
    if let Ok(token) = std::env::var("VAULT_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(VaultToken::new(token.trim()));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let path = PathBuf::from(home).join(".vault-token");
        if path.exists() {
            return read_token_file(&path);
        }
    }
    Err(VaultError::Config(
        "no Vault token: pass --vault-token-file, set VAULT_TOKEN, or log in with `vault login` (~/.vault-token)".into(),
    ))
}

fn read_token_file(path: &Path) -> Result<VaultToken, VaultError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        VaultError::Config(format!(
            "cannot read the Vault token file {}: {e}",
            path.display()
        ))
    })?;
    let text = zeroize::Zeroizing::new(text);
    let token = text.trim();
    if token.is_empty() {
        return Err(VaultError::Config(format!(
            "the Vault token file {} is empty",
            path.display()
        )));
    }
    Ok(VaultToken::new(token))
}

#[derive(Deserialize)]
struct DataEnvelope<T> {
    data: T,
}

impl Client {
    /// `GET auth/token/lookup-self`.
    pub async fn lookup_self(&self, token: &VaultToken) -> Result<TokenInfo, VaultError> {
        let answer: DataEnvelope<TokenInfo> = self
            .call(Method::GET, "auth/token/lookup-self", Some(token), None)
            .await?;
        Ok(answer.data)
    }

    /// `POST auth/token/revoke-self`: the token and its children stop working now.
    pub async fn revoke_self(&self, token: &VaultToken) -> Result<(), VaultError> {
        self.send(Method::POST, "auth/token/revoke-self", Some(token), None)
            .await?;
        Ok(())
    }
}
