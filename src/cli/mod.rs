//! The headless command line: clap commands that print text or JSON.
//!
//! Exit codes: 0 success, 1 bad input (unreadable or malformed file, unknown tensor, failed
//! write), 2 bad usage (clap's own errors).

pub mod args;
pub mod bits;
pub mod compare;
pub mod inspect;
pub mod plan;
mod progress;
pub mod quantize;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version print and exit 0; usage errors exit 2.
        Err(error) => error.exit(),
    };
    let result = match cli.command {
        Some(Command::Bits(ref args)) => bits::run(args),
        Some(Command::Compare(ref args)) => compare::run(args),
        Some(Command::Inspect(ref args)) => inspect::run(args),
        Some(Command::Quantize(ref args)) => quantize::run(args),
        Some(Command::Plan(ref args)) => plan::run(args),
        None => open_app(cli.files),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped early (`| head`) is not an error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        // Settings that cannot work are usage errors (exit 2), like clap's own.
        Err(error) if error.downcast_ref::<quantize::UsageError>().is_some() => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, skipping a cause its parent already quotes (typed
/// errors that name their file and their I/O source would otherwise repeat them).
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Writes text to stdout, returning (rather than panicking on) a closed pipe.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

#[cfg(feature = "gui")]
fn open_app(files: Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    crate::app::run(files)
}

#[cfg(not(feature = "gui"))]
fn open_app(_files: Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    use clap::CommandFactory;
    // Built without the desktop app: show what the CLI can do instead.
    Cli::command().print_help()?;
    Ok(())
}
