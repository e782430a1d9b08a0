//! Every relative link in every Markdown file of the repository leads somewhere: the
//! file or directory exists (inside the repository), and a `#anchor` names a heading
//! of the target Markdown file, by GitHub's rules for heading anchors.
//!
//! The walk covers the whole checkout and skips `.git`, build output (`target/`, and any
//! directory holding a `CACHEDIR.TAG`, as Cargo's target directories do wherever they
//! are) and tool directories that are never committed (`.venv`, `node_modules`, ...).
//! Links with a scheme (`https:`, `mailto:`) are not checked; nor are links inside code
//! blocks or code spans, which are text. A failure names the file, the line and the
//! link.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Directories never walked: version control, build output, tool caches.
const SKIP_DIRS: &[&str] = &[
    ".git",
    "target",
    ".venv",
    "node_modules",
    "__pycache__",
    ".local",
];

#[test]
fn every_relative_link_and_anchor_in_the_markdown_resolves() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("README.md")),
        "no README.md found under {}: the walk is broken",
        root.display()
    );
    let mut anchors = Anchors::default();
    let mut broken = Vec::new();
    for file in &files {
        broken.extend(check_file(&root, file, &mut anchors));
    }
    assert!(
        broken.is_empty(),
        "{} broken link(s) in the Markdown files:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

/// Every `*.md` file under `dir`, skipping what is never committed.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let path = entry.path();
        let kind = entry
            .file_type()
            .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            if !SKIP_DIRS.contains(&name.as_ref()) && !path.join("CACHEDIR.TAG").exists() {
                markdown_files(&path, out);
            }
        } else if kind.is_file() && name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The problems of one file: `path:line: link: why`.
fn check_file(root: &Path, file: &Path, anchors: &mut Anchors) -> Vec<String> {
    let text = read(file);
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let mut broken = Vec::new();
    for (line, link) in links(&text) {
        if let Err(why) = resolve(root, file, &link, anchors) {
            broken.push(format!("{shown}:{line}: ({link}): {why}"));
        }
    }
    broken
}

/// Why `link`, written in `file`, leads nowhere.
fn resolve(root: &Path, file: &Path, link: &str, anchors: &mut Anchors) -> Result<(), String> {
    if has_scheme(link) || link.starts_with("//") {
        return Ok(());
    }
    let (path, fragment) = match link.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment)),
        None => (link, None),
    };
    let path = percent_decode(path);
    let target = if path.is_empty() {
        file.to_path_buf()
    } else if let Some(from_root) = path.strip_prefix('/') {
        normalize(&root.join(from_root))
    } else {
        normalize(&file.parent().unwrap_or(root).join(&path))
    };
    if !target.starts_with(root) {
        return Err(format!("{} is outside the repository", target.display()));
    }
    if !target.exists() {
        let shown = target.strip_prefix(root).unwrap_or(&target);
        return Err(format!("{} does not exist", shown.display()));
    }
    let Some(fragment) = fragment else {
        return Ok(());
    };
    let fragment = percent_decode(fragment);
    // GitHub shows a directory's README.md; anchors into other files (source lines such
    // as #L10) are not headings and are not checked.
    let markdown = if target.is_dir() {
        target.join("README.md")
    } else {
        target.clone()
    };
    if markdown.extension().is_none_or(|ext| ext != "md") || !markdown.is_file() {
        return Ok(());
    }
    let known = anchors.of(&markdown);
    if fragment.is_empty() || known.contains(&fragment) {
        return Ok(());
    }
    let shown = markdown.strip_prefix(root).unwrap_or(&markdown);
    Err(format!(
        "no heading with the anchor #{fragment} in {}",
        shown.display()
    ))
}

/// The anchors of each Markdown file, read once.
#[derive(Default)]
struct Anchors(HashMap<PathBuf, HashSet<String>>);

impl Anchors {
    fn of(&mut self, file: &Path) -> &HashSet<String> {
        self.0
            .entry(file.to_path_buf())
            .or_insert_with(|| anchors_in(&read(file)))
    }
}

fn read(file: &Path) -> String {
    fs::read_to_string(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()))
}

/// `https:`, `mailto:`...: a scheme is letters (and `+-.`) before the first `:`, with no
/// `/`, `#` or `?` before it.
fn has_scheme(link: &str) -> bool {
    match link.find(':') {
        Some(i) => {
            let scheme = &link[..i];
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

/// `a/./b/../c` to `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || {
            let digits = text.get(i + 1..i + 3)?;
            u8::from_str_radix(digits, 16).ok()
        };
        match (bytes[i], hex()) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---- Reading Markdown ----

/// The lines of `text` that are not inside a fenced code block, with their numbers
/// (from 1).
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        match fence {
            Some((c, len)) => {
                if marker == Some(c) && run >= len && trimmed[run..].trim().is_empty() {
                    fence = None;
                }
            }
            None if run >= 3 && indent <= 3 => fence = marker.map(|c| (c, run)),
            None => out.push((i + 1, line)),
        }
    }
    out
}

/// `line` without its code spans (`` `...` ``, of any number of backticks).
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let after = &rest[start + ticks..];
        let closing = "`".repeat(ticks);
        match after.find(&closing) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                // An unmatched run of backticks is literal text.
                out.push_str(&rest[start..start + ticks]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The link destinations in `text`, with their line numbers: inline links and images
/// (`[text](dest)`), reference definitions (`[label]: dest`) and HTML `href`/`src`.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (number, line) in prose_lines(text) {
        let line = without_code_spans(line);
        if let Some(dest) = reference_definition(&line) {
            out.push((number, dest));
            continue;
        }
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let (dest, after) = destination(&rest[at + 2..]);
            if !dest.is_empty() {
                out.push((number, dest));
            }
            rest = after;
        }
        for attribute in ["href=\"", "src=\""] {
            let mut rest = line.as_str();
            while let Some(at) = rest.find(attribute) {
                let value = &rest[at + attribute.len()..];
                let end = value.find('"').unwrap_or(value.len());
                out.push((number, value[..end].to_string()));
                rest = &value[end..];
            }
        }
    }
    out
}

/// `[label]: dest "title"` → `dest`.
fn reference_definition(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 || !trimmed.starts_with('[') || trimmed.starts_with("[^") {
        return None;
    }
    let close = trimmed.find("]:")?;
    let dest = trimmed[close + 2..].split_whitespace().next()?;
    Some(
        dest.trim_start_matches('<')
            .trim_end_matches('>')
            .to_string(),
    )
}

/// The destination at the start of `text` (just after `](`), and what follows it.
fn destination(text: &str) -> (String, &str) {
    if let Some(inner) = text.strip_prefix('<') {
        let end = inner.find('>').unwrap_or(inner.len());
        return (inner[..end].to_string(), &inner[end..]);
    }
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return (text[..i].to_string(), &text[i..]),
            ')' => depth -= 1,
            c if c.is_whitespace() => return (text[..i].to_string(), &text[i..]),
            _ => {}
        }
    }
    (text.to_string(), "")
}

/// Every anchor a reader can link to in `text`: its headings' slugs (ATX and setext),
/// and explicit `<a id>`/`<a name>` anchors.
fn anchors_in(text: &str) -> HashSet<String> {
    let mut slugger = Slugger::default();
    let mut anchors = HashSet::new();
    let mut previous: Option<&str> = None;
    for (_, line) in prose_lines(text) {
        for attribute in ["<a id=\"", "<a name=\""] {
            let mut rest = line;
            while let Some(at) = rest.find(attribute) {
                let value = &rest[at + attribute.len()..];
                let end = value.find('"').unwrap_or(value.len());
                anchors.insert(value[..end].to_string());
                rest = &value[end..];
            }
        }
        if let Some(heading) = atx_heading(line) {
            anchors.insert(slugger.slug(&heading));
            previous = None;
            continue;
        }
        if let Some(text) = previous
            && is_setext_underline(line)
        {
            anchors.insert(slugger.slug(text));
            previous = None;
            continue;
        }
        let trimmed = line.trim();
        let paragraph = !trimmed.is_empty()
            && !trimmed.starts_with('|')
            && !trimmed.starts_with(['-', '*', '+', '>'])
            && !line.starts_with("    ");
        previous = paragraph.then_some(trimmed);
    }
    anchors
}

/// `## Text ##` → `Text`.
fn atx_heading(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &trimmed[level..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let text = rest.trim();
    let text = text.trim_end_matches('#');
    // A closing run of # counts only after a space.
    let text = if text.len() < rest.trim().len() && !text.is_empty() && !text.ends_with(' ') {
        rest.trim()
    } else {
        text.trim_end()
    };
    Some(text.to_string())
}

fn is_setext_underline(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty()
        && line.len() - line.trim_start().len() <= 3
        && (trimmed.chars().all(|c| c == '=') || trimmed.chars().all(|c| c == '-'))
}

/// GitHub's heading anchors (the `github-slugger` rules): the heading's rendered text,
/// lower-cased; everything but letters, digits, `-`, `_` and spaces dropped; each space
/// a `-`; a repeated slug gets `-1`, `-2`, ... in order.
#[derive(Default)]
struct Slugger {
    seen: HashMap<String, usize>,
}

impl Slugger {
    fn slug(&mut self, heading: &str) -> String {
        let base: String = rendered(heading)
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut slug = base.clone();
        while self.seen.contains_key(&slug) {
            let count = self.seen.get_mut(&base).expect("the base slug is recorded");
            *count += 1;
            slug = format!("{base}-{count}");
        }
        self.seen.insert(slug.clone(), 0);
        slug
    }
}

/// The text a heading renders as: code spans' content, links' and images' text, no
/// HTML tags, no backslash escapes.
fn rendered(heading: &str) -> String {
    let mut out = String::with_capacity(heading.len());
    let mut chars = heading.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' => {}
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '<' => {
                // An HTML tag: skip to its end.
                for skipped in chars.by_ref() {
                    if skipped == '>' {
                        break;
                    }
                }
            }
            '!' if chars.peek() == Some(&'[') => {}
            ']' if chars.peek() == Some(&'(') => {
                // The end of a link's text: drop the destination.
                let mut depth = 0usize;
                for skipped in chars.by_ref() {
                    match skipped {
                        '(' => depth += 1,
                        ')' if depth <= 1 => break,
                        ')' => depth -= 1,
                        _ => {}
                    }
                }
            }
            '[' | ']' => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod checker {
    //! The checker itself: it must find what it is for, or its passing means nothing.
    use super::*;

    fn slugs(headings: &[&str]) -> Vec<String> {
        let mut slugger = Slugger::default();
        headings.iter().map(|h| slugger.slug(h)).collect()
    }

    #[test]
    fn slugs_follow_githubs_rules() {
        assert_eq!(
            slugs(&[
                "The agent's uid",
                "What `--retire` guarantees, and when to use it",
                "`get` and `probe`",
                "1. The image",
                "The webhook's `failurePolicy`",
                "Start → plaintext",
                "Install with [Helm](https://helm.sh)",
                "SECRET_ZERO_SOCKET",
            ]),
            [
                "the-agents-uid",
                "what---retire-guarantees-and-when-to-use-it",
                "get-and-probe",
                "1-the-image",
                "the-webhooks-failurepolicy",
                "start--plaintext",
                "install-with-helm",
                "secret_zero_socket",
            ]
        );
        assert_eq!(
            slugs(&["Flags", "Flags", "Flags-1", "Flags"]),
            ["flags", "flags-1", "flags-1-1", "flags-2"]
        );
    }

    #[test]
    fn code_is_not_a_link_and_a_hash_in_code_is_not_a_heading() {
        let text = "# Title\n\nSee [a](a.md#x) and `[b](nope.md)`.\n\n```sh\n# not a heading\n[c](nope.md)\n```\n\
                    [d]: d.md \"title\"\n<a href=\"e.md\">e</a>\nText\n---\n";
        let found: Vec<String> = links(text).into_iter().map(|(_, l)| l).collect();
        assert_eq!(found, ["a.md#x", "d.md", "e.md"]);
        let anchors = anchors_in(text);
        assert!(anchors.contains("title") && anchors.contains("text"));
        assert!(!anchors.contains("not-a-heading"));
        assert_eq!(links("[x](<a b.md>) [y](f(1).md)")[1].1, "f(1).md");
    }

    #[test]
    fn a_missing_file_a_missing_anchor_and_an_escape_are_each_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("docs")).unwrap();
        fs::write(
            root.join("docs/page.md"),
            "# Page\n\n## Some part\n\n[up](../README.md#intro) [self](#some-part)\n",
        )
        .unwrap();
        fs::write(
            root.join("README.md"),
            "# Intro\n\n[ok](docs/page.md#some-part)\n[gone](docs/none.md)\n\
             [bad anchor](docs/page.md#other-part)\n[out](../elsewhere.md)\n\
             [web](https://example.com/x.md) [code](src/lib.rs#L1)\n",
        )
        .unwrap();
        fs::create_dir(root.join("src")).unwrap();
        fs::write(root.join("src/lib.rs"), "").unwrap();
        let mut anchors = Anchors::default();
        assert!(check_file(root, &root.join("docs/page.md"), &mut anchors).is_empty());
        let broken = check_file(root, &root.join("README.md"), &mut anchors);
        assert_eq!(broken.len(), 3, "{broken:#?}");
        assert!(broken[0].starts_with("README.md:4: (docs/none.md): docs/none.md does not exist"));
        assert!(broken[1].starts_with("README.md:5: (docs/page.md#other-part): no heading"));
        assert!(
            broken[2].contains("outside the repository"),
            "{}",
            broken[2]
        );
    }
}
