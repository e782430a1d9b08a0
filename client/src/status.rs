//! What `GET /v1/status` answers, and what the agent checked the plaintext to be.

/// What `serve` checked the plaintext to be; decides the content type and whether
/// dotenv can be rendered (`serve --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum DocFormat {
    /// The plaintext must be a JSON object.
    #[default]
    Json,
    /// Opaque bytes, served as application/octet-stream.
    Raw,
}

impl DocFormat {
    /// `json` or `raw`, as in `/v1/status` and `--format`.
    pub fn as_str(self) -> &'static str {
        match self {
            DocFormat::Json => "json",
            DocFormat::Raw => "raw",
        }
    }
}

impl std::fmt::Display for DocFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The agent's life cycle as `/v1/status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    /// Bound, still logging in and decrypting.
    Starting,
    /// Holding a delivery for an allowed peer.
    Ready,
    /// All deliveries made; answering 410.
    Delivered,
    /// Login or decrypt failed; `reason` says why.
    Failed,
}

impl AgentState {
    /// The state as `/v1/status` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Starting => "starting",
            AgentState::Ready => "ready",
            AgentState::Delivered => "delivered",
            AgentState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of `GET /v1/status`. Never plaintext.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentStatus {
    /// Where the agent is in its life cycle.
    pub state: AgentState,
    /// Deliveries that can still be made.
    pub deliveries_left: u32,
    /// What the plaintext was checked to be.
    pub format: DocFormat,
    /// The Transit key version of the ciphertext, once known.
    pub key_version: Option<u64>,
    /// Only when `state` is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AgentStatus {
    /// Ready or delivered: what `probe` exits 0 on.
    pub fn is_healthy(&self) -> bool {
        matches!(self.state, AgentState::Ready | AgentState::Delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_body_keeps_its_wire_names() {
        let status = AgentStatus {
            state: AgentState::Failed,
            deliveries_left: 1,
            format: DocFormat::Raw,
            key_version: Some(3),
            reason: Some("login denied".into()),
        };
        let text = serde_json::to_string(&status).unwrap();
        assert_eq!(
            text,
            r#"{"state":"failed","deliveries_left":1,"format":"raw","key_version":3,"reason":"login denied"}"#
        );
        assert_eq!(serde_json::from_str::<AgentStatus>(&text).unwrap(), status);
        let ready: AgentStatus = serde_json::from_str(
            r#"{"state":"ready","deliveries_left":1,"format":"json","key_version":null}"#,
        )
        .unwrap();
        assert!(ready.is_healthy() && ready.reason.is_none());
        for state in [
            AgentState::Starting,
            AgentState::Ready,
            AgentState::Delivered,
            AgentState::Failed,
        ] {
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{}\"", state.as_str())
            );
        }
    }
}
