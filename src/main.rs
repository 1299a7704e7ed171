//! The quantscope binary: the desktop app by default, or the CLI when given a subcommand.

fn main() -> std::process::ExitCode {
    quantscope::cli::main()
}
