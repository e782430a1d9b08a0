//! Read the application's secrets from the secret-zero agent, once, at start-up.
//!
//! ```sh
//! SECRET_ZERO_SOCKET=/run/secret-zero/agent.sock cargo run --example read_secret
//! cargo run --example read_secret -- DB_PASSWORD   # also print one value
//! ```
//!
//! Prints the names of the keys received (never their values, unless one is named on
//! the command line). Exit codes are those of `secret-zero get`: 10 refused (403), 11
//! no delivery left (410), 12 no agent on the socket.

use std::process::ExitCode;

use secret_zero_client::{self as client, ClientError};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let socket = match client::socket_from_env() {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("read_secret: {e} (hint: {})", e.hint());
            return ExitCode::from(2);
        }
    };
    // One read at start-up; the document stays in this process's memory only and is
    // wiped when `document` is dropped.
    let document = match client::fetch_json(&socket).await {
        Ok(document) => document,
        Err(e) => return fail(&e),
    };
    let keys = match document.keys() {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("read_secret: {e} (hint: {})", e.hint());
            return ExitCode::from(3);
        }
    };
    println!(
        "read_secret: received {} keys: {}",
        keys.len(),
        keys.join(", ")
    );
    if let Some(name) = std::env::args().nth(1) {
        match document.key(&name) {
            Ok(value) => println!("{name}={}", String::from_utf8_lossy(value.expose())),
            Err(e) => {
                eprintln!("read_secret: {e} (hint: {})", e.hint());
                return ExitCode::from(3);
            }
        }
    }
    ExitCode::SUCCESS
}

fn fail(error: &ClientError) -> ExitCode {
    let what = match error {
        ClientError::Refused { .. } => "refused by the agent (403)",
        ClientError::Gone { .. } => "no delivery left (410): the secrets were already read",
        ClientError::Unreachable { .. } => "the agent is unreachable",
        _ => "the agent did not deliver",
    };
    eprintln!("read_secret: {what}: {error}");
    if let Some(hint) = error.hint().filter(|h| !h.is_empty()) {
        eprintln!("read_secret: hint: {hint}");
    }
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(1))
}
