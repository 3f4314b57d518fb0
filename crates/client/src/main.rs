//! `mimi`: the MIMI command-line client (`docs/client.md`).
//!
//! Exit codes (`docs/client.md`, "Exit codes"): 0 success (also when standard output
//! closes early, as in `mimi show ROOM | head`), 1 other failure, 2 usage, 3 refused by
//! the room's rules, 4 not found, 5 network, 6 local state.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use mimi_client::ClientError;
use mimi_client::cli::{self, Args, Cli, Writer};

fn fail(e: &ClientError, json: bool) -> ExitCode {
    let mut stderr = std::io::stderr();
    let _ = if json {
        writeln!(stderr, "{}", cli::error_json(e))
    } else {
        writeln!(stderr, "mimi: {e}")
    };
    ExitCode::from(e.kind().exit_code())
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // --help and --version are "errors" that go to standard output with success.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let json = args.json;
    let cli = match Cli::from_args(args) {
        Ok(cli) => cli,
        Err(e) => return fail(&e, json),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "mimi: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = Writer::new(std::io::stdout(), json);
    match runtime.block_on(cli::run_to(cli, &mut out, cli::stderr_is_terminal())) {
        Ok(()) | Err(ClientError::OutputClosed) => ExitCode::SUCCESS,
        Err(e) => fail(&e, json),
    }
}
