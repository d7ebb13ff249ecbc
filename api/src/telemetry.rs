//! Logging through `tracing`, as text or JSON.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The default filter of the long-running commands (`serve`, `projectors`).
pub const SERVICE_FILTER: &str = "info,sqlx=warn,tower_http=info";

/// The default filter of the one-shot operator commands, whose output is
/// what they print: only warnings and errors are logged.
pub const COMMAND_FILTER: &str = "warn";

/// Installs the global subscriber with the service's default filter.
pub fn init(format: LogFormat) {
    init_with(format, SERVICE_FILTER);
}

/// Installs the global subscriber. `RUST_LOG` overrides `default_filter`.
pub fn init_with(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
