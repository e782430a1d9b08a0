//! The Vault session of `seal` and `rotate`: an operator's token
//! (`--vault-token-file`, `VAULT_TOKEN`, `~/.vault-token`), or with `--role` the same
//! ServiceAccount login as the agent, whose token is revoked when the work is done.

use crate::cli::{OperatorAuthArgs, VaultArgs};
use crate::error::Error;
use crate::retry::Backoff;
use crate::vault::{self, Session};

/// Open the session the flags describe. `keep_alive` reuses connections (for the many
/// requests `rotate` makes); the agent's one-shot hygiene does not apply to
/// ciphertext-only work.
pub async fn session(
    vault_args: &VaultArgs,
    auth: &OperatorAuthArgs,
    keep_alive: bool,
    backoff: Backoff,
) -> Result<Session, Error> {
    let client = vault::Client::new(&vault_args.config(keep_alive))?;
    match auth.login.spec() {
        Some(spec) => Ok(Session::login(&client, &spec, backoff).await?),
        None => {
            let token = vault::operator_token(auth.vault_token_file.as_deref())?;
            Ok(Session::with_token(client, token))
        }
    }
}
