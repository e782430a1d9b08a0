//! One file per subcommand; each only wires library pieces together.

mod audit;
mod get;
mod inject;
mod operator;
mod probe;
mod rotate;
mod seal;
mod serve;
mod webhook;

use crate::cli::Command;
use crate::error::Error;

/// Run a subcommand; `Ok` carries the exit code (0 unless the command says otherwise).
pub async fn run(command: Command) -> Result<i32, Error> {
    match command {
        Command::Serve(args) => serve::run(*args).await.map(|()| 0),
        Command::Get(args) => get::run(args).await.map(|()| 0),
        Command::Probe(args) => probe::run(args).await,
        Command::Seal(args) => seal::run(*args).await.map(|()| 0),
        Command::Rotate(args) => rotate::run(*args).await,
        Command::Inject(args) => inject::run(*args).await.map(|()| 0),
        Command::Webhook(args) => webhook::run(*args).await.map(|()| 0),
        Command::Audit(args) => audit::run(*args).await,
    }
}
