//! `peak-rss REPORT PROGRAM [ARGS...]`: run PROGRAM, write its own peak resident memory
//! in KiB to REPORT, and exit as it did (128 + N when killed by signal N).
//!
//! The number is the kernel's `ru_maxrss` for exactly that pid, read as it is reaped
//! (`wait4`). Measuring from a process of its own matters: Linux starts a child's
//! high-water mark at its parent's when it execs, so a child spawned straight from a
//! large test process would report the test's memory, not its own. This process stays
//! a few MiB, which bounds that error.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(report), Some(program)) = (args.next(), args.next()) else {
        eprintln!("usage: peak-rss REPORT PROGRAM [ARGS...]");
        std::process::exit(2);
    };
    let child = Command::new(&program)
        .args(args)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.to_string_lossy()));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; `pid` is our own child, which
    // nothing else waits for (std's `Child` is dropped without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    // Linux reports ru_maxrss in KiB.
    std::fs::write(&report, usage.ru_maxrss.to_string()).expect("write the report");
    let status = ExitStatus::from_raw(status);
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    std::process::exit(code);
}
