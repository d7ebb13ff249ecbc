//! `shop`: the commerce backend's one binary (see `api::cli`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    api::cli::main()
}
