//! `probe`: for kubelet's exec probes. Asks `/v1/status`, which never consumes a
//! delivery; exit 0 when the agent is ready or has delivered.

use crate::cli::ProbeArgs;
use crate::error::Error;
use crate::exit;

pub async fn run(args: ProbeArgs) -> Result<i32, Error> {
    let socket = args.socket;
    let status = crate::client::status(&socket).await?;
    if status.is_healthy() {
        return Ok(exit::OK);
    }
    let reason = status
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    eprintln!(
        "secret-zero probe: agent is {}{reason}",
        status.state.as_str()
    );
    Ok(exit::AGENT_UNREACHABLE)
}
