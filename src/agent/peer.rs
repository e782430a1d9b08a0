//! Who may talk to the agent, decided from the kernel's `SO_PEERCRED` of each connection.
//!
//! The agent's own uid is always allowed: `probe` runs in the sidecar's container as
//! that uid, and a process with our uid could read our memory anyway. Root is not
//! allowed implicitly; list uid 0 to admit it. `--allow-gid` matches the peer's primary
//! gid only, because that is all `SO_PEERCRED` reports.

use std::fmt;

/// `--allow-uid` / `--allow-gid`. Both empty: only the agent's own uid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerPolicy {
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
}

impl PeerPolicy {
    /// Whether `peer` may use the agent whose effective uid is `own_uid`.
    pub fn allows(&self, peer: &Peer, own_uid: u32) -> bool {
        peer.uid == own_uid || self.uids.contains(&peer.uid) || self.gids.contains(&peer.gid)
    }

    /// For the start-up log line.
    pub fn describe(&self, own_uid: u32) -> String {
        let mut out = format!("uid {own_uid} (own)");
        for uid in &self.uids {
            out.push_str(&format!(", uid {uid}"));
        }
        for gid in &self.gids {
            out.push_str(&format!(", gid {gid}"));
        }
        out
    }
}

/// The credentials of the process at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Absent when the peer lives in another pid namespace.
    pub pid: Option<i32>,
    pub uid: u32,
    pub gid: u32,
}

impl Peer {
    /// Read `SO_PEERCRED` from a connected stream.
    pub fn of(stream: &tokio::net::UnixStream) -> std::io::Result<Peer> {
        let cred = stream.peer_cred()?;
        Ok(Peer {
            pid: cred.pid(),
            uid: cred.uid(),
            gid: cred.gid(),
        })
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid={pid} uid={} gid={}", self.uid, self.gid),
            None => write!(f, "pid=? uid={} gid={}", self.uid, self.gid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32) -> Peer {
        Peer {
            pid: Some(1),
            uid,
            gid,
        }
    }

    #[test]
    fn empty_policy_admits_own_uid_only() {
        let policy = PeerPolicy::default();
        assert!(policy.allows(&peer(1000, 1000), 1000));
        assert!(!policy.allows(&peer(1001, 1000), 1000));
        assert!(!policy.allows(&peer(0, 0), 1000), "root is not implicit");
    }

    #[test]
    fn listed_uids_and_gids_are_admitted() {
        let policy = PeerPolicy {
            uids: vec![2000],
            gids: vec![3000],
        };
        assert!(policy.allows(&peer(2000, 1), 1000));
        assert!(policy.allows(&peer(5, 3000), 1000));
        assert!(policy.allows(&peer(1000, 1), 1000));
        assert!(!policy.allows(&peer(2001, 3001), 1000));
    }
}
