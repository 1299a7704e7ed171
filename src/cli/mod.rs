//! The headless command line: clap commands that print text or JSON.
//!
//! Exit codes: 0 success, 1 bad input (unreadable or malformed file, unknown tensor, failed
//! write), 2 bad usage (clap's own errors).

pub mod args;
pub mod bits;
pub mod inspect;
mod progress;

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
        Some(Command::Inspect(ref args)) => inspect::run(args),
        Some(Command::Quantize(_)) => {
            Err(anyhow::anyhow!("this command is being built"))
        }
        None => open_app(cli.files),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
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
