//! Faults of the list verb that a real API server produces under load or after an
//! etcd compaction, switched on by tests: continue tokens that have expired (410
//! `Expired`) and API Priority and Fairness throttling (429 with `Retry-After`); and
//! connections closed in the middle of an answer (a list's or a get's), as when the
//! API server or a load balancer in front of it goes away.

use serde_json::json;

use super::http::{ApiRequest, ApiResponse, Cut};
use super::listing;
use super::state::Cluster;

/// The API server's message for a continue token older than the last compaction.
pub const EXPIRED_MESSAGE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

#[derive(Default)]
pub(crate) struct ListFaults {
    /// List requests answered with a page (200) so far, any kind.
    pub answered: u64,
    /// Continue tokens made at a resourceVersion below this one are expired.
    pub compacted_below: u64,
    /// Compact once `answered` reaches this.
    pub compact_at: Option<u64>,
    /// This many list requests are answered 429, once `answered` reaches `throttle_from`.
    pub throttled: u64,
    pub throttle_from: u64,
    pub retry_after_secs: u32,
    /// List requests answered 410 or 429 by the knobs above.
    pub refused: u64,
    /// This many list answers are cut, once `answered` reaches `cut_lists_from`.
    pub cut_lists: u64,
    pub cut_lists_from: u64,
    /// This many Secret gets are cut.
    pub cut_gets: u64,
    /// How the answers above are cut.
    pub cut_how: Option<Cut>,
    /// Answers cut so far.
    pub cut_done: u64,
}

/// Everything before now is compacted away: every continue token issued so far expires.
pub(crate) fn compact(cluster: &mut Cluster) {
    let rv: u64 = cluster.next_resource_version().parse().unwrap_or(0);
    cluster.list_faults.compacted_below = rv;
}

/// The fault answer to a list request, if a knob says there is one.
pub(crate) fn before(cluster: &mut Cluster, req: &ApiRequest) -> Option<ApiResponse> {
    if cluster.list_faults.throttled > 0
        && cluster.list_faults.answered >= cluster.list_faults.throttle_from
    {
        cluster.list_faults.throttled -= 1;
        cluster.list_faults.refused += 1;
        let secs = cluster.list_faults.retry_after_secs;
        // What API Priority and Fairness really answers (the apiserver's
        // `tooManyRequests` filter): Go's `http.Error`, plain text, with the wait in a
        // `Retry-After` header and not in a `Status` body.
        let mut answer = ApiResponse::text(429, "Too many requests, please try again later.\n");
        answer.retry_after = Some(secs);
        return Some(answer);
    }
    let token = req.query("continue").filter(|c| !c.is_empty())?;
    let (rv, key) = listing::decode_continue(token)?;
    if rv >= cluster.list_faults.compacted_below {
        return None;
    }
    cluster.list_faults.refused += 1;
    // As the API server does, offer a token that goes on from there, inconsistently.
    let fresh: u64 = cluster.current_resource_version().parse().unwrap_or(0);
    Some(ApiResponse::json(
        410,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": { "continue": listing::encode_continue(fresh, &key) },
            "status": "Failure",
            "message": EXPIRED_MESSAGE,
            "reason": "Expired",
            "code": 410,
        }),
    ))
}

/// Count an answered list; compact if a knob said so.
pub(crate) fn after(cluster: &mut Cluster) {
    cluster.list_faults.answered += 1;
    if cluster
        .list_faults
        .compact_at
        .is_some_and(|at| cluster.list_faults.answered >= at)
    {
        cluster.list_faults.compact_at = None;
        compact(cluster);
    }
}

/// Cut `answer` (a 200 to a list or a get of Secrets) if a knob says so. A cut list
/// page does not count as answered: the client never had it.
pub(crate) fn cut(cluster: &mut Cluster, verb: &str, answer: &mut ApiResponse) -> bool {
    let faults = &mut cluster.list_faults;
    let Some(how) = faults.cut_how else {
        return false;
    };
    let due = match verb {
        "list" if faults.cut_lists > 0 && faults.answered >= faults.cut_lists_from => {
            faults.cut_lists -= 1;
            true
        }
        "get" if faults.cut_gets > 0 => {
            faults.cut_gets -= 1;
            true
        }
        _ => false,
    };
    if due {
        faults.cut_done += 1;
        answer.cut = Some(how);
    }
    due
}
