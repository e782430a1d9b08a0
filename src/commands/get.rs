//! `get`: read the document from the agent once and print it to stdout.

use std::io::Write;

use crate::cli::GetArgs;
use crate::client::{self, FetchFormat};
use crate::error::Error;

pub async fn run(args: GetArgs) -> Result<(), Error> {
    let socket = args.socket;
    let format = args.format;
    if args.key.is_some() && format != FetchFormat::Json {
        return Err(Error::usage(
            "--key picks a value out of the JSON document",
            "use --key without --format, or drop --key",
        ));
    }

    // The agent picks the key out, and checks it before the delivery counts: a typo
    // consumes nothing.
    let document = match &args.key {
        Some(key) => client::fetch_key(&socket, key).await?,
        None => client::fetch(&socket, format).await?,
    };
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(document.bytes());
    // A JSON document or a value ends with a newline on a terminal or in a file; the
    // bytes of --format raw are printed exactly as delivered.
    let newline = if format == FetchFormat::Raw {
        Ok(())
    } else if !document.bytes().ends_with(b"\n") || args.key.is_some() {
        stdout.write_all(b"\n")
    } else {
        Ok(())
    };
    written
        .and(newline)
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            Error::input(
                format!("cannot write the document to stdout: {e}"),
                "the delivery is used up; the agent must be restarted (or allow more with --max-deliveries)",
            )
        })
}
