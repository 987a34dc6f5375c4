//! The `agent-runtime` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use agent_runtime::cli::{self, Command};
use agent_runtime::config::{Config, LogConfig, LogFormat};
use agent_runtime::{app, check};

/// The internal subcommand a local sandbox runs first (see `agent_runtime_local`); not
/// for people, so it is not in `--help`.
const SANDBOX_INIT: &str = "sandbox-init";

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some(SANDBOX_INIT) {
        let code = agent_runtime_local::sandbox_init(std::env::args().skip(2));
        return ExitCode::from(u8::try_from(code).unwrap_or(125));
    }
    let command = cli::parse().into_command();
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    runtime.block_on(async {
        match command {
            Command::Serve(args) => serve(args.config).await,
            Command::Check(args) => run_check(args.config).await,
            Command::Keys(args) => run_keys(args).await,
            Command::Init(args) => done(cli::init::run(
                &args.dir,
                &args.profile,
                args.listen,
                args.force,
            )),
            Command::Profiles(args) => match args.command {
                cli::ProfilesCommand::New(new) => done(cli::profiles::run_new_command(&new)),
            },
            Command::Chat(args) => cli::chat::run(args).await,
            Command::Schema(args) => {
                use agent_runtime::transport::{openapi, schema};
                match args.kind {
                    cli::SchemaKind::Protocol => print!("{}", schema::protocol_text()),
                    cli::SchemaKind::Openapi => print!("{}", openapi::document_text()),
                }
                ExitCode::SUCCESS
            }
        }
    })
}

async fn serve(args: cli::ConfigArgs) -> ExitCode {
    let config = match Config::load(&args.config, &args.overrides()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config.log);
    let listener = match tokio::net::TcpListener::bind(config.server.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {}: {error}", config.server.listen);
            return ExitCode::FAILURE;
        }
    };
    match app::serve(config, &args.config, listener, app::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn run_check(args: cli::ConfigArgs) -> ExitCode {
    let config = match Config::load(&args.config, &args.overrides()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let report = check::check(&config, &args.config).await;
    for line in &report.passed {
        println!("ok   {line}");
    }
    for line in &report.warnings {
        println!("WARN {line}");
    }
    for line in &report.problems {
        println!("FAIL {line}");
    }
    if report.problems.is_empty() {
        println!("{} is ready", args.config.display());
        ExitCode::SUCCESS
    } else {
        println!(
            "{} problem(s) in {}",
            report.problems.len(),
            args.config.display()
        );
        ExitCode::FAILURE
    }
}

async fn run_keys(args: cli::KeysArgs) -> ExitCode {
    let config = match Config::load(&args.config.config, &args.config.overrides()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    match agent_runtime::keys_command::run(&config, args.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// Exits non-zero with the message of a failed command.
fn done(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(log: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
