//! The `frontgate` binary: parses arguments and calls the library.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use frontgate::config::Config;
use frontgate::plan::Plan;

/// mimalloc instead of glibc's malloc: the request path allocates and frees many small blocks
/// per request (header values, futures, buffers), and glibc's consolidation of freed blocks was
/// a measurable share of the plain-proxy CPU (docs/performance.md). The binary only: a crate that
/// embeds the library keeps its own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "frontgate",
    version,
    about = "A security gateway in front of a web app's API and front-end"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway with a config file.
    Serve {
        /// The config file (or FRONTGATE_CONFIG).
        #[arg(short, long, env = "FRONTGATE_CONFIG", default_value = "frontgate.toml")]
        config: PathBuf,
    },
    /// Validate a config file: prints every error with file:line:column, exits non-zero if any.
    Check {
        #[arg(short, long, env = "FRONTGATE_CONFIG")]
        config: PathBuf,
    },
    /// Manage API keys in the store the config names: create, list, show, revoke, rotate.
    Keys {
        #[arg(
            short,
            long,
            env = "FRONTGATE_CONFIG",
            default_value = "frontgate.toml",
            global = true
        )]
        config: PathBuf,
        #[command(subcommand)]
        command: frontgate::keys_cli::KeysCommand,
    },
    /// Run everything embedded: a demo API, a demo page and the gateway in front of them.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: std::net::SocketAddr,
        /// The plain-HTTP redirect listener ("off" to disable).
        #[arg(long, default_value = "127.0.0.1:8080")]
        redirect: String,
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: std::net::SocketAddr,
        #[arg(long, default_value = "./.frontgate-demo")]
        data_dir: PathBuf,
        /// Print the demo's config (with its embedded API replaced by http://127.0.0.1:3000,
        /// where yours would listen, and its secrets by ${NAME} references) and exit: a
        /// starting point for your own. Writes the demo page and OpenAPI document to --data-dir.
        #[arg(long)]
        print_config: bool,
    },
    /// Run only the demo upstream, in the foreground (for benchmarks: bench/load.sh).
    #[command(hide = true)]
    DemoUpstream {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
}

/// `println!`, except that a closed stdout (`frontgate keys list | head`) is not a panic: the
/// reader has what it wanted, so the rest is dropped quietly, as Unix tools do.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `eprintln!`, quiet on a closed stderr for the same reason.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match Plan::load(&config) {
            Ok(plan) => {
                let warnings = plan.warnings();
                // What serve would make of it, short of listening and without side effects.
                if let Err(e) = frontgate::server::check(plan) {
                    err!("{}: {e}", config.display());
                    err!("1 error(s) in {}", config.display());
                    return ExitCode::from(2);
                }
                for w in warnings {
                    err!("{}: warning: {w}", config.display());
                }
                out!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                err!("{errors}");
                err!("{} error(s) in {}", errors.0.len(), config.display());
                ExitCode::from(2)
            }
        },
        Command::Serve { config: path } => {
            let plan = match Plan::load(&path) {
                Ok(p) => p,
                Err(errors) => {
                    err!("{errors}");
                    err!(
                        "frontgate: not starting: {} error(s) in {}",
                        errors.0.len(),
                        path.display()
                    );
                    return ExitCode::from(2);
                }
            };
            frontgate::observe::init_logging(&plan.config.log);
            run(plan, Some(path), |_, _| {})
        }
        Command::Demo { listen, redirect, admin, data_dir, print_config } => {
            let redirect = match redirect.as_str() {
                "off" => None,
                r => match r.parse() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        err!("frontgate demo: --redirect must be IP:PORT or off");
                        return ExitCode::from(2);
                    }
                },
            };
            let opts = frontgate::demo::DemoOptions { listen, redirect, admin, data_dir };
            if print_config {
                return match frontgate::demo::printable_config(&opts) {
                    Ok(text) => {
                        out!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        err!("frontgate demo: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            let plan = match frontgate::demo::prepare(&opts) {
                Ok(p) => p,
                Err(e) => {
                    err!("frontgate demo: {e}");
                    return ExitCode::FAILURE;
                }
            };
            frontgate::observe::init_logging(&plan.config.log);
            run(plan, None, |bound, config| {
                out!("{}", frontgate::demo::banner(bound, config));
            })
        }
        Command::DemoUpstream { listen } => demo_upstream(listen),
        Command::Keys { config, command } => match frontgate::keys_cli::run(&config, command) {
            Ok(out) => {
                out!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => {
                err!("frontgate keys: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// Serves the demo upstream alone on one thread until the process is killed.
fn demo_upstream(listen: std::net::SocketAddr) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            err!("frontgate demo-upstream: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                err!("frontgate demo-upstream: cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(a) => out!("demo upstream listening on http://{a}"),
            Err(e) => {
                err!("frontgate demo-upstream: {e}");
                return ExitCode::FAILURE;
            }
        }
        frontgate::demo::upstream::serve(listener, frontgate::demo::upstream::DemoApi::new()).await;
        ExitCode::SUCCESS
    })
}

fn run(
    plan: Plan,
    path: Option<PathBuf>,
    on_bound: impl FnOnce(&frontgate::server::Bound, &Config),
) -> ExitCode {
    // The metrics recorder before anything counts: the stores' event listeners count at once.
    frontgate::observe::install_metrics_recorder();
    match frontgate::server::serve(plan, path, on_bound) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            err!("frontgate: {e}");
            ExitCode::FAILURE
        }
    }
}
