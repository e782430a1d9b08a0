//! Hostile documents against the real binary: each limit of env.rs (docs/fuzzing.md)
//! ends in one clear line and exit 3, before any Vault call, with the process's own
//! peak memory bounded: the kernel's `ru_maxrss` for that pid, read by `wait4` in the
//! test bed's small `peak-rss` (a child spawned from the test itself would inherit the
//! test's own high-water mark).
//!
//! Vault is a closed port: reaching it would be another exit code (6), so exit 3 also
//! shows the document was refused first.

use std::path::{Path, PathBuf};

use secret_zero_testbed::cmd::{Cmd, Run};

/// The documented exit code of unusable input (client/src/exit.rs).
const INPUT: i32 = 3;
/// What one refusal may cost, in KiB of peak resident memory: the 16 MiB document
/// limit twice (the bytes read, and the JSON they may become) and the binary's own
/// baseline (about 7 MiB) with room to spare.
const PEAK_KIB: u64 = 64 * 1024;

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().expect("a temporary directory"))
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, content).expect("write the document");
        path
    }
}

fn seal(path: &Path, format: &str) -> Cmd {
    let mut cmd = Cmd::secret_zero();
    cmd.args([
        "seal",
        "--transit-key",
        "app",
        "--namespace",
        "shop",
        "--name",
        "app",
    ])
    .arg("--from-file")
    .arg(path)
    .args(["--input-format", format])
    .env("VAULT_ADDR", "http://127.0.0.1:9")
    .env("VAULT_TOKEN", "not-used");
    cmd
}

fn inject(path: &Path) -> Cmd {
    let mut cmd = Cmd::secret_zero();
    cmd.arg("inject").arg(path);
    cmd
}

/// Run `cmd` and return what it printed and its own peak memory in KiB.
fn measured(cmd: &Cmd) -> (Run, u64) {
    let report = tempfile::NamedTempFile::new().expect("a report file");
    let run = cmd.measured(report.path()).run();
    let text = std::fs::read_to_string(report.path()).expect("peak-rss wrote its report");
    (run, text.trim().parse().expect("KiB"))
}

/// Run `cmd`, expect exit 3 with one error line holding `wanted`, and nothing on
/// stdout; returns the peak memory in KiB.
fn refused(cmd: &Cmd, wanted: &str) -> u64 {
    let (run, peak) = measured(cmd);
    run.expect(INPUT);
    let line = one_error_line(&run);
    assert!(line.contains(wanted), "wanted {wanted:?} in {line:?}");
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
    assert!(
        peak < PEAK_KIB,
        "`{}` peaked at {peak} KiB (bound {PEAK_KIB} KiB)",
        run.what
    );
    peak
}

fn one_error_line(run: &Run) -> String {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("secret-zero: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{}", run.stderr);
    lines[0].to_string()
}

/// Nine levels of nine aliases each: 9^9 (387 million) "lol"s if expanded.
fn billion_laughs() -> String {
    let mut doc = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..9u8 {
        let (name, prev) = ((b'a' + level) as char, (b'a' + level - 1) as char);
        let refs = vec![format!("*{prev}"); 9].join(", ");
        doc.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    doc
}

#[test]
fn the_measurement_is_the_processs_own() {
    // A tiny program measures tiny, whatever the test process holds meanwhile.
    let ballast = vec![1u8; 64 << 20];
    let (run, peak) = measured(Cmd::new("true").quiet());
    run.expect(0);
    assert!(peak < 8 * 1024, "`true` peaked at {peak} KiB");
    assert_eq!(ballast.iter().map(|&b| u64::from(b)).sum::<u64>(), 64 << 20);
}

#[test]
fn a_billion_laughs_stops_at_the_alias_limit_with_bounded_memory() {
    let dir = Dir::new();
    let doc = dir.file("laughs.yaml", billion_laughs().as_bytes());
    let wanted = "has aliases that expand to more than 100000 events";
    let peak = refused(&seal(&doc, "yaml"), wanted);
    eprintln!("seal, billion laughs: peak {peak} KiB");
    let peak = refused(&inject(&doc), "RecordedAnchorEvents");
    eprintln!("inject, billion laughs: peak {peak} KiB");
}

#[test]
fn one_large_scalar_repeated_by_aliases_stops_at_the_scalar_budget() {
    // 1 MiB named once and repeated 100 times: 100 MiB of JSON from 1 MiB of YAML.
    let mut doc = format!("big: &big \"{}\"\ncopies:\n", "x".repeat(1 << 20));
    for _ in 0..100 {
        doc.push_str("  - *big\n");
    }
    let dir = Dir::new();
    let doc = dir.file("amplified.yaml", doc.as_bytes());
    let wanted = "has more than 16 MiB of text, alias replays included";
    let peak = refused(&seal(&doc, "yaml"), wanted);
    eprintln!("seal, 1 MiB x 100 aliases: peak {peak} KiB");
    let peak = refused(&inject(&doc), "ScalarBytes");
    eprintln!("inject, 1 MiB x 100 aliases: peak {peak} KiB");
}

#[test]
fn ten_thousand_levels_of_nesting_are_refused_at_the_depth_limit() {
    let dir = Dir::new();
    let depth = 10_000;
    let json = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let json = dir.file("deep.json", json.as_bytes());
    refused(
        &seal(&json, "json"),
        "nests deeper than 127 levels (line 1, column",
    );

    let flow = format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let flow = dir.file("deep-flow.yaml", flow.as_bytes());
    refused(&seal(&flow, "yaml"), "nests deeper than 64 levels");

    // In block style each level is indented one more space: 2,000 levels (2 MB)
    // keep it under the size limit.
    let mut block = String::new();
    for level in 0..2_000 {
        block.push_str(&format!("{}k:\n", " ".repeat(level)));
    }
    let block = dir.file("deep-block.yaml", block.as_bytes());
    refused(&seal(&block, "yaml"), "nests deeper than 64 levels");
    refused(&inject(&flow), "recursion limit exceeded");

    // 127 levels of JSON are still a document.
    let ok = format!("{}1{}", "{\"a\":".repeat(127), "}".repeat(127));
    let ok = dir.file("deep-ok.json", ok.as_bytes());
    let run = seal(&ok, "json").run();
    assert!(
        !run.stderr.contains("nests deeper"),
        "127 levels refused: {}",
        run.stderr
    );
}

#[test]
fn too_many_nodes_or_aliases_are_refused_by_name() {
    let dir = Dir::new();
    let nodes = format!("list:\n{}", "- 1\n".repeat(250_001));
    let nodes = dir.file("nodes.yaml", nodes.as_bytes());
    refused(&seal(&nodes, "yaml"), "has more than 250000 YAML nodes");

    // Many anchors, each used once: the alias count, not the ratio, is what trips.
    let mut aliases = String::from("anchors:\n");
    for i in 0..10_001 {
        aliases.push_str(&format!("  - &a{i} {i}\n"));
    }
    aliases.push_str("uses:\n");
    for i in 0..10_001 {
        aliases.push_str(&format!("  - *a{i}\n"));
    }
    let aliases = dir.file("aliases.yaml", aliases.as_bytes());
    refused(&seal(&aliases, "yaml"), "has more than 10000 YAML aliases");

    let ratio = format!("a: &a 1\nb: [{}]\n", vec!["*a"; 200].join(", "));
    let ratio = dir.file("ratio.yaml", ratio.as_bytes());
    refused(
        &seal(&ratio, "yaml"),
        "uses its anchors more than 10 times each",
    );
}

#[test]
fn an_over_size_document_is_refused_after_reading_just_past_the_limit() {
    let dir = Dir::new();
    // A 1 GiB file (sparse: no disk is used) is refused having read 16 MiB of it.
    let huge = dir.0.path().join("huge.json");
    let file = std::fs::File::create(&huge).expect("create");
    file.set_len(1 << 30).expect("a sparse 1 GiB file");
    drop(file);
    let line = format!("{} is larger than 16 MiB", huge.display());
    let peak = refused(&seal(&huge, "json"), &line);
    eprintln!("seal, 1 GiB file: peak {peak} KiB");
    let peak = refused(&inject(&huge), "is larger than 16 MiB");
    eprintln!("inject, 1 GiB file: peak {peak} KiB");

    // The same through stdin.
    let mut cmd = seal(Path::new("-"), "json");
    cmd.stdin(vec![b' '; (16 << 20) + 1]);
    refused(&cmd, "the document on stdin is larger than 16 MiB");
}
