//! Logging in with a JWT: the `kubernetes` and `jwt` auth methods take the same
//! `{role, jwt}` body at `auth/<mount>/login`.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::client::{Client, parse};
use super::error::VaultError;
use super::token::VaultToken;

/// How the agent proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMethod {
    /// Vault calls TokenReview on the Kubernetes API with our ServiceAccount token.
    Kubernetes,
    /// Vault checks the ServiceAccount token's signature itself (JWKS, OIDC discovery
    /// or a public key): no call back to the cluster.
    Jwt,
}

impl AuthMethod {
    /// The mount Vault's docs use for this method.
    pub fn default_mount(self) -> &'static str {
        match self {
            AuthMethod::Kubernetes => "kubernetes",
            AuthMethod::Jwt => "jwt",
        }
    }
}

/// A successful login. The token is secret; the rest is not.
#[derive(Debug)]
pub struct Login {
    pub token: VaultToken,
    pub accessor: String,
    pub policies: Vec<String>,
    /// Seconds the token is valid for.
    pub lease_duration: u64,
    /// How many requests the token may make before Vault destroys it (0: no limit).
    pub num_uses: u64,
}

#[derive(Serialize)]
struct LoginRequest<'a> {
    role: &'a str,
    jwt: &'a str,
}

#[derive(Deserialize)]
struct LoginResponse {
    auth: AuthBlock,
}

#[derive(Deserialize)]
struct AuthBlock {
    client_token: Zeroizing<String>,
    #[serde(default)]
    accessor: String,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    num_uses: u64,
}

impl Client {
    /// `POST auth/{mount}/login` with `{role, jwt}`. The method only names which kind
    /// of mount it is, for messages; the wire format is the same for both.
    pub async fn login(
        &self,
        _method: AuthMethod,
        mount: &str,
        role: &str,
        jwt: &SecretString,
    ) -> Result<Login, VaultError> {
        let mount = mount.trim_matches('/');
        let path = format!("auth/{mount}/login");
        let body = Zeroizing::new(
            serde_json::to_vec(&LoginRequest {
                role,
                jwt: jwt.expose_secret(),
            })
            .expect("login body serializes"),
        );
        let answer = self
            .send(Method::POST, &path, None, Some(body))
            .await
            .map_err(VaultError::at_login)?;
        login_answer(&path, &answer.body)
    }
}

/// A 2xx login answer: a token and what it may do. One without a `client_token` is
/// refused; the error never quotes the body.
#[doc(hidden)]
pub fn login_answer(path: &str, body: &[u8]) -> Result<Login, VaultError> {
    let auth = parse::<LoginResponse>(path, body)?.auth;
    if auth.client_token.is_empty() {
        return Err(VaultError::BadResponse {
            path: path.to_string(),
            detail: "login answer carries no client_token".into(),
        });
    }
    Ok(Login {
        token: VaultToken::new(auth.client_token.as_str()),
        accessor: auth.accessor,
        policies: auth.policies,
        lease_duration: auth.lease_duration,
        num_uses: auth.num_uses,
    })
}
