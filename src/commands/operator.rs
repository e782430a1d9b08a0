//! A Vault session for operators and pipelines (`seal`, `rotate`): an operator token
//! (`--vault-token-file`, `VAULT_TOKEN`, `~/.vault-token`), or with `--role` the same
//! ServiceAccount login as the agent, whose token is revoked when the work is done.

use crate::cli::{OperatorAuthArgs, VaultArgs};
use crate::error::Error;
use crate::retry::{Backoff, retry};
use crate::vault::{self, VaultToken};

/// A client and the token to use with it.
pub struct Session {
    pub vault: vault::Client,
    pub token: VaultToken,
    /// Set when we logged in ourselves: that token is ours to revoke.
    login_accessor: Option<String>,
}

impl Session {
    /// Open a session. `keep_alive` reuses connections (for many requests, as `rotate`
    /// makes); the agent's one-shot hygiene does not apply to ciphertext-only work.
    pub async fn open(
        vault_args: &VaultArgs,
        auth: &OperatorAuthArgs,
        keep_alive: bool,
        backoff: Backoff,
    ) -> Result<Session, Error> {
        let vault = vault::Client::new(&vault_args.config(keep_alive))?;
        let Some(role) = &auth.login.role else {
            let token = vault::operator_token(auth.vault_token_file.as_deref())?;
            return Ok(Session {
                vault,
                token,
                login_accessor: None,
            });
        };
        let method = auth.login.method();
        let mount = auth.login.mount();
        let jwt = crate::source::read_jwt(&auth.login.token_file)?;
        let login = retry("vault login", backoff, || {
            vault.login(method, &mount, role, &jwt)
        })
        .await?;
        drop(jwt);
        tracing::info!(accessor = %login.accessor, policies = ?login.policies, "logged in to Vault");
        Ok(Session {
            vault,
            token: login.token,
            login_accessor: Some(login.accessor),
        })
    }

    /// Revoke the token if this session logged in; an operator's own token is left alone.
    pub async fn close(self) {
        let Some(accessor) = self.login_accessor else {
            return;
        };
        match self.vault.revoke_self(&self.token).await {
            Ok(()) => tracing::info!(%accessor, "Vault token revoked"),
            Err(e) => {
                tracing::warn!(%accessor, error = %e, "could not revoke the Vault token; it expires with its TTL")
            }
        }
    }
}
