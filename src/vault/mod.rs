//! A typed async client for exactly the Vault/OpenBao API secret-zero needs:
//! login (kubernetes, jwt), token lookup and revocation, and Transit.

mod auth;
mod client;
mod error;
mod session;
mod token;
mod transit;

#[doc(hidden)]
pub use auth::login_answer;
pub use auth::{AuthMethod, Login};
pub use client::{Client, VaultConfig};
pub use error::VaultError;
#[doc(hidden)]
pub use session::check_jwt;
pub use session::{LoginSpec, Session};
pub use token::{TokenInfo, VaultToken, operator_token};
pub use transit::{BatchItem, KeyConfig, KeyInfo, ciphertext_version};
#[doc(hidden)]
pub use transit::{decrypt_answer, key_answer, rewrap_answer, rewrap_batch_answer};
