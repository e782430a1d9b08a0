//! Process hardening before any secret is touched (ARCHITECTURE.md, I4): not dumpable, no core
//! files, memory locked where the limits allow.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// What hardening achieved; the caller logs it.
#[derive(Debug, Default)]
pub struct Hardening {
    pub not_dumpable: bool,
    pub no_core: bool,
    pub memory_locked: bool,
    /// Why something could not be done: warnings, not failures.
    pub warnings: Vec<String>,
    /// What could not be done by design of the platform, and what that means: logged
    /// as information, since nothing is wrong and nothing is to be done.
    pub notes: Vec<String>,
}

/// Make the process non-dumpable (no ptrace by same-uid peers, no /proc/PID/mem for
/// them, no core dump), set `RLIMIT_CORE` to 0, and lock memory so secrets are not
/// swapped out.
pub fn harden() -> Hardening {
    let mut report = Hardening::default();

    match rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable) {
        Ok(()) => report.not_dumpable = true,
        Err(e) => report
            .warnings
            .push(format!("cannot mark the process not dumpable: {e}")),
    }

    let zero = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    match setrlimit(Resource::Core, zero) {
        Ok(()) => report.no_core = true,
        Err(e) => report
            .warnings
            .push(format!("cannot set RLIMIT_CORE to 0: {e}")),
    }

    lock_memory(&mut report);
    report
}

fn lock_memory(report: &mut Hardening) {
    use rustix::mm::{MlockAllFlags, mlockall};
    // With MCL_FUTURE every later mapping must fit the lock limit or the allocation
    // fails and the process aborts. Lock only when the limit cannot bite: unlimited,
    // or CAP_IPC_LOCK (which ignores it).
    let limit = getrlimit(Resource::Memlock);
    let unlimited = limit.current.is_none();
    if !unlimited && !has_ipc_lock() {
        report
            .notes
            .push(memory_not_locked(limit.current.unwrap_or(0)));
        return;
    }
    // ONFAULT locks pages as they are touched instead of faulting in every mapping
    // up front: the binary's untouched pages stay out of RSS and start-up stays fast,
    // while every page that ever held a secret is still kept out of swap.
    match mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT) {
        Ok(()) => report.memory_locked = true,
        Err(e) => report
            .warnings
            .push(format!("memory not locked: mlockall failed: {e}")),
    }
}

/// Why memory is not locked and what that means. Restricted Pod Security (which the
/// README recommends) forbids the IPC_LOCK capability, so this is the usual case in a
/// cluster and no advice to add it is given.
fn memory_not_locked(limit: u64) -> String {
    format!(
        "memory not locked (RLIMIT_MEMLOCK is {limit} bytes and there is no CAP_IPC_LOCK, which restricted Pod Security does not allow): \
         the kernel may swap the agent's pages only where the node has swap, which most Kubernetes nodes do not; \
         the plaintext is held only until it is delivered, and every freed block is wiped by the zeroizing allocator"
    )
}

/// Whether CAP_IPC_LOCK is in our effective set, from /proc/self/status.
fn has_ipc_lock() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_not_locked_is_explained_not_an_instruction() {
        let note = memory_not_locked(8_388_608);
        assert!(
            note.starts_with("memory not locked (RLIMIT_MEMLOCK is 8388608 bytes"),
            "{note}"
        );
        for why in ["restricted Pod Security", "swap", "zeroizing allocator"] {
            assert!(note.contains(why), "{why:?} not in {note}");
        }
        assert!(!note.contains("add the IPC_LOCK"), "{note}");
        assert!(!note.contains('\n'), "{note}");
    }
}
