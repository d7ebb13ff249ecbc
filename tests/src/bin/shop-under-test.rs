//! The `shop` binary, built with the tests so that they can start real
//! processes (`CARGO_BIN_EXE_shop-under-test`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    api::cli::main()
}
