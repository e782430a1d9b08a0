//! `secret-zero`: parse, set up logging, run the command, map the error to an exit code.

#![deny(unsafe_code)]

use secret_zero::app::{Cli, Hinted, LogFormat, ZeroingAllocator, exit};

// Freed heap is wiped: library copies of a secret do not outlive their use
// (ARCHITECTURE.md, I3).
#[global_allocator]
static ALLOCATOR: ZeroingAllocator = ZeroingAllocator;

fn main() {
    // A usage error exits here with its code (2), after rotate's report line.
    let cli = Cli::parse_or_exit();
    init_tracing(cli.log_format, &cli.log_level);

    // One thread is plenty for an agent that serves one client at a time, and keeps
    // the footprint small.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("secret-zero: cannot start the async runtime: {e}");
            std::process::exit(exit::INTERNAL);
        }
    };
    let result = runtime.block_on(secret_zero::app::run(cli.command));
    drop(runtime);
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let line = e.one_line();
            match cli.log_format {
                LogFormat::Json => tracing::error!(exit_code = e.exit_code(), "{line}"),
                LogFormat::Text => eprintln!("secret-zero: error: {line}"),
            }
            std::process::exit(e.exit_code());
        }
    }
}

fn init_tracing(format: LogFormat, level: &str) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // `info`, or per target: `warn,secret_zero::audit=info`. Targets needs no regex
    // engine, which keeps the agent's binary smaller than a full EnvFilter would.
    let filter = level.parse::<Targets>().unwrap_or_else(|_| {
        eprintln!("secret-zero: warning: invalid --log-level {level:?}, using info");
        Targets::new().with_default(LevelFilter::INFO)
    });
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(filter)
            .init(),
        LogFormat::Text => builder.with_ansi(false).finish().with(filter).init(),
    }
}
