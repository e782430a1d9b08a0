//! `webhook` (issue 7).

use crate::cli::WebhookArgs;
use crate::error::Error;

pub async fn run(_args: WebhookArgs) -> Result<(), Error> {
    Err(Error::input("webhook is not built yet", "see issue 7"))
}
