//! `inject`: read Kubernetes YAML, add the agent to annotated pod templates, print it.

use std::io::{Read, Write};

use crate::cli::InjectArgs;
use crate::error::Error;
use crate::inject::inject_yaml;

pub async fn run(args: InjectArgs) -> Result<(), Error> {
    let mut paths = args.files;
    paths.extend(args.filename);
    if paths.is_empty() {
        paths.push("-".into());
    }
    let mut inputs = Vec::new();
    for path in &paths {
        let label = path.display().to_string();
        let stdin = label == "-";
        // One byte past the limit shows the input is too large without reading it all;
        // the room is reserved, not touched, so a small file costs little.
        let max = crate::env::MAX_DOCUMENT_BYTES;
        let mut bytes = Vec::with_capacity(max + 1);
        let take = max as u64 + 1;
        let read = if stdin {
            std::io::stdin().take(take).read_to_end(&mut bytes)
        } else {
            std::fs::File::open(path).and_then(|f| f.take(take).read_to_end(&mut bytes))
        };
        read.map_err(|e| {
            let what = if stdin { "stdin" } else { label.as_str() };
            Error::input(
                format!("inject: cannot read {what}: {e}"),
                "give a readable YAML file, or - for stdin",
            )
        })?;
        if bytes.len() > max {
            return Err(Error::input(
                format!("inject: {label} is larger than {} MiB", max >> 20),
                "inject reads Kubernetes manifests, which are far smaller: split the input",
            ));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::input(
                format!("inject: {label} is not UTF-8 text"),
                "Kubernetes YAML is UTF-8",
            )
        })?;
        inputs.push((label, text));
    }

    let options = args.defaults.options(args.namespace);
    let rendered = inject_yaml(&inputs, &options, args.output)
        .map_err(|e| Error::input(format!("inject: {e}"), e.hint()))?;
    for warning in &rendered.warnings {
        tracing::warn!("{warning}");
    }
    tracing::debug!(pod_templates = rendered.injected, "injected");

    // Nothing is written unless every document could be handled.
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(rendered.text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            Error::input(
                format!("inject: cannot write stdout: {e}"),
                "check the pipe",
            )
        })
}
