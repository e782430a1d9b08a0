//! `seal` (issue 4).

use crate::cli::SealArgs;
use crate::error::Error;

pub async fn run(_args: SealArgs) -> Result<(), Error> {
    Err(Error::input("seal is not built yet", "see issue 4"))
}
