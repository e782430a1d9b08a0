//! `inject` (issue 6).

use crate::cli::InjectArgs;
use crate::error::Error;

pub async fn run(_args: InjectArgs) -> Result<(), Error> {
    Err(Error::input("inject is not built yet", "see issue 6"))
}
