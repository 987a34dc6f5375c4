//! Command-line interface definitions. Running the commands is up to the binary; the
//! first-five-minutes commands run from the submodules: [`init`] (`agent-runtime init`),
//! [`profiles`] (`agent-runtime profiles new`), [`chat`] (`agent-runtime chat`).

pub mod chat;
pub mod init;
pub mod profiles;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::CliOverrides;

/// The `EXAMPLES` section of `--help`.
const EXAMPLES: &str = "\
EXAMPLES:
  Quickstart: serve with agent-runtime.toml from the current directory
    agent-runtime

  Serve with another config file and address
    agent-runtime serve --config /etc/agent-runtime.toml --listen 0.0.0.0:4000

  First five minutes: a config and a first profile in my-agents/, then serve and chat
    agent-runtime init my-agents && cd my-agents && agent-runtime
    agent-runtime chat          # in a second terminal; or open http://127.0.0.1:4000/

  Check a config (every problem with its file and key) without serving
    agent-runtime check --config agent-runtime.toml

  Make an API key for a client (auth.mode = \"principals\"); it is printed once
    agent-runtime keys create billing-service --max-live 5 --creates-per-minute 10

  Override any key through the environment: AGENT_RUNTIME__<SECTION>__<KEY>
    AGENT_RUNTIME__SERVER__LISTEN=127.0.0.1:8080 AGENT_RUNTIME__SESSIONS__IDLE_TIMEOUT=1h agent-runtime
";

/// Runs AI agents in per-session sandboxes and streams their output to clients.
#[derive(Clone, Debug, Parser)]
#[command(name = "agent-runtime", version, after_help = EXAMPLES)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `serve` when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the implicit `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The command to run, with `agent-runtime [OPTIONS]` meaning `serve [OPTIONS]`.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

/// The subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(ServeArgs),
    /// Load the config, build what can be built offline, render every profile, and report
    /// each problem with its file and key; exits non-zero if there is any.
    Check(CheckArgs),
    /// Create, list and revoke API keys in the configured session store.
    Keys(KeysArgs),
    /// Write a commented agent-runtime.toml and a first profile into DIR, then say what to
    /// run next. Existing files are kept unless --force.
    Init(InitArgs),
    /// Agent profiles: scaffold a new one.
    Profiles(ProfilesArgs),
    /// Chat with an agent of a running runtime in this terminal: each line of stdin is a
    /// message; the turn streams as it runs; approvals and questions are asked inline.
    /// Ctrl-C interrupts the turn, a second Ctrl-C (or Ctrl-D) quits.
    Chat(ChatArgs),
    /// Print the protocol's JSON Schema (docs/protocol.schema.json) or the REST API's
    /// OpenAPI document (docs/openapi.json).
    Schema(SchemaArgs),
}

/// Options of `schema`.
#[derive(Clone, Debug, Args)]
pub struct SchemaArgs {
    /// Which document to print.
    #[arg(value_enum, default_value_t = SchemaKind::Protocol)]
    pub kind: SchemaKind,
}

/// The documents `schema` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    /// The JSON Schema of the whole protocol (Socket.IO and REST).
    Protocol,
    /// The OpenAPI 3.1 document of the REST API.
    Openapi,
}

/// Options of `init`.
#[derive(Clone, Debug, Args)]
pub struct InitArgs {
    /// Where to write agent-runtime.toml and profiles/ (made if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The first profile's name.
    #[arg(long, value_name = "NAME", default_value = "assistant")]
    pub profile: String,
    /// The address the config serves on (`server.listen`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,
    /// Replace files that exist.
    #[arg(long)]
    pub force: bool,
}

/// Options of `profiles`.
#[derive(Clone, Debug, Args)]
pub struct ProfilesArgs {
    /// What to do with profiles.
    #[command(subcommand)]
    pub command: ProfilesCommand,
}

/// The `profiles` subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum ProfilesCommand {
    /// Write a new profile (profile.toml, system-prompt.md, CLAUDE.md) to edit from there.
    New(ProfileNewArgs),
}

/// Options of `profiles new`.
#[derive(Clone, Debug, Args)]
pub struct ProfileNewArgs {
    /// The profile's name, which clients ask for as its agent type: letters, digits, '.',
    /// '_' and '-', not starting with '.'.
    pub name: String,
    /// The folder of profiles to write it into; default: `[profiles] path` of the config
    /// when the config file exists, else ./profiles.
    #[arg(long, value_name = "PROFILES_DIR")]
    pub dir: Option<PathBuf>,
    /// The config whose `[profiles] path` is the default folder.
    #[arg(
        short,
        long,
        value_name = "FILE",
        env = "AGENT_RUNTIME_CONFIG",
        default_value = "agent-runtime.toml"
    )]
    pub config: PathBuf,
    /// Replace the profile's files if they exist.
    #[arg(long)]
    pub force: bool,
}

/// Options of `chat`.
#[derive(Clone, Debug, Args)]
pub struct ChatArgs {
    /// The profile of the new session; may be left out when the runtime has only one.
    #[arg(conflicts_with = "session")]
    pub profile: Option<String>,
    /// The runtime's address.
    #[arg(
        long,
        value_name = "URL",
        env = "AGENT_RUNTIME_URL",
        default_value = "http://127.0.0.1:4000"
    )]
    pub url: String,
    /// The token (API key, JWT or shared secret), sent as a Bearer token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "AGENT_RUNTIME_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Go on with this session instead of creating one; a stopped session is resumed.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// The new session's metadata, a JSON object.
    #[arg(long, value_name = "JSON", conflicts_with = "session")]
    pub metadata: Option<String>,
}

/// Options of `keys`.
#[derive(Clone, Debug, Args)]
pub struct KeysArgs {
    /// The config whose `[store]` holds the keys.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// What to do with keys.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// The `keys` subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once; only its hash is stored. The key's principal is
    /// NAME.
    Create(KeyCreateArgs),
    /// List the keys: name, admin, limits, creation time (never a key).
    List,
    /// Revoke the key named NAME; servers stop accepting it within `auth.key_cache`.
    Revoke {
        /// The key's name.
        name: String,
    },
}

/// Options of `keys create`.
#[derive(Clone, Debug, Args)]
pub struct KeyCreateArgs {
    /// The key's name: 1 to 64 of A-Z a-z 0-9 . _ - @, starting with a letter or digit.
    pub name: String,
    /// The key may list and act on every principal's sessions.
    #[arg(long)]
    pub admin: bool,
    /// The most live sessions (0: unlimited); default: `quotas.max_live_sessions`.
    #[arg(long, value_name = "N")]
    pub max_live: Option<u32>,
    /// The most stored sessions (0: unlimited); default: `quotas.max_stored_sessions`.
    #[arg(long, value_name = "N")]
    pub max_stored: Option<u32>,
    /// Session creates per minute (0: unlimited); default: `quotas.creates_per_minute`.
    #[arg(long, value_name = "N")]
    pub creates_per_minute: Option<u32>,
    /// Messages per minute (0: unlimited); default: `quotas.messages_per_minute`.
    #[arg(long, value_name = "N")]
    pub messages_per_minute: Option<u32>,
}

/// Where the config comes from and the flags that override it.
#[derive(Clone, Debug, Args)]
pub struct ConfigArgs {
    /// The config file. Relative paths in it are resolved against its directory.
    #[arg(
        short,
        long,
        value_name = "FILE",
        env = "AGENT_RUNTIME_CONFIG",
        default_value = "agent-runtime.toml"
    )]
    pub config: PathBuf,
    /// Address to listen on, overriding `server.listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

impl ConfigArgs {
    /// The values that override the config file and environment.
    pub fn overrides(&self) -> CliOverrides {
        CliOverrides {
            listen: self.listen,
        }
    }
}

/// Options of `serve`.
#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// The config.
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Options of `check`.
#[derive(Clone, Debug, Args)]
pub struct CheckArgs {
    /// The config to check.
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Parses the process arguments; prints help or an error and exits on bad input.
pub fn parse() -> Cli {
    Cli::parse()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn command(args: &[&str]) -> Command {
        let mut argv = vec!["agent-runtime"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .expect("arguments parse")
            .into_command()
    }

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_serve_with_defaults() {
        let Command::Serve(serve) = command(&[]) else {
            panic!("expected serve");
        };
        let expected = std::env::var_os("AGENT_RUNTIME_CONFIG")
            .map_or_else(|| PathBuf::from("agent-runtime.toml"), PathBuf::from);
        assert_eq!(serve.config.config, expected);
        assert_eq!(serve.config.overrides(), CliOverrides::default());
    }

    #[test]
    fn top_level_flags_serve() {
        let Command::Serve(serve) = command(&["--config", "x.toml", "--listen", "0.0.0.0:9"])
        else {
            panic!("expected serve");
        };
        assert_eq!(serve.config.config, PathBuf::from("x.toml"));
        assert_eq!(
            serve.config.listen,
            Some("0.0.0.0:9".parse().expect("address"))
        );
    }

    #[test]
    fn serve_and_check_take_config() {
        let Command::Serve(serve) = command(&["serve", "-c", "a.toml"]) else {
            panic!("expected serve");
        };
        assert_eq!(serve.config.config, PathBuf::from("a.toml"));
        let Command::Check(check) = command(&["check", "--config", "b.toml"]) else {
            panic!("expected check");
        };
        assert_eq!(check.config.config, PathBuf::from("b.toml"));
    }

    #[test]
    fn keys_subcommands_parse() {
        let Command::Keys(keys) = command(&[
            "keys",
            "-c",
            "k.toml",
            "create",
            "svc-1",
            "--admin",
            "--max-live",
            "5",
        ]) else {
            panic!("expected keys");
        };
        assert_eq!(keys.config.config, PathBuf::from("k.toml"));
        let KeysCommand::Create(create) = keys.command else {
            panic!("expected create");
        };
        assert_eq!(create.name, "svc-1");
        assert!(create.admin);
        assert_eq!(create.max_live, Some(5));
        assert_eq!(create.creates_per_minute, None);
        let Command::Keys(keys) = command(&["keys", "revoke", "svc-1"]) else {
            panic!("expected keys");
        };
        assert!(matches!(keys.command, KeysCommand::Revoke { name } if name == "svc-1"));
    }

    #[test]
    fn first_five_minutes_commands_parse() {
        let Command::Init(init) = command(&["init", "agents", "--force"]) else {
            panic!("expected init");
        };
        assert_eq!(init.dir, PathBuf::from("agents"));
        assert_eq!(init.profile, "assistant");
        assert!(init.force);
        let Command::Init(init) = command(&["init"]) else {
            panic!("expected init");
        };
        assert_eq!(init.dir, PathBuf::from("."));
        let Command::Profiles(profiles) = command(&["profiles", "new", "reviewer", "--dir", "p"])
        else {
            panic!("expected profiles");
        };
        let ProfilesCommand::New(new) = profiles.command;
        assert_eq!(
            (new.name.as_str(), new.dir),
            ("reviewer", Some(PathBuf::from("p")))
        );
        let Command::Chat(chat) = command(&["chat", "--session", "s-1", "--url", "http://h:1"])
        else {
            panic!("expected chat");
        };
        assert_eq!(chat.session.as_deref(), Some("s-1"));
        assert_eq!(chat.url, "http://h:1");
        assert!(
            Cli::try_parse_from(["agent-runtime", "chat", "tester", "--session", "s-1"]).is_err(),
            "a profile and a session exclude each other"
        );
    }

    #[test]
    fn bad_listen_is_a_usage_error() {
        let error = Cli::try_parse_from(["agent-runtime", "--listen", "localhost"])
            .expect_err("host names are not addresses");
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn help_has_examples() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("EXAMPLES:"), "{help}");
        assert!(help.contains("agent-runtime check --config"), "{help}");
        assert!(help.contains("AGENT_RUNTIME__SERVER__LISTEN"), "{help}");
    }
}
