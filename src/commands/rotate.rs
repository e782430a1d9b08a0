//! `rotate` (issue 5).

use crate::cli::RotateArgs;
use crate::error::Error;

pub async fn run(_args: RotateArgs) -> Result<i32, Error> {
    Err(Error::input("rotate is not built yet", "see issue 5"))
}
