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
        report.warnings.push(format!(
            "memory not locked: RLIMIT_MEMLOCK is {} bytes and CAP_IPC_LOCK is absent; add the IPC_LOCK capability to lock it",
            limit.current.unwrap_or(0)
        ));
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
