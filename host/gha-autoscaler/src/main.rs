//! `gha-autoscaler`: one binary, one subcommand per role. `main` only parses, starts telemetry and runs.

mod cli;
mod signals;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc: the controller's watch caches (thousands of small objects replaced as they change) fragment glibc's
/// per-thread arenas into a much larger resident set (fleet benchmark, 1,000 scale sets: 387 MiB with glibc).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings (its `malloc_conf`, a C string): one arena and no thread caches (neither process allocates
/// hard enough to need them), freed pages returned at once. The smallest resident set for both the listener (as
/// with glibc) and the controller (192 instead of 226 MiB for 1,000 scale sets with jemalloc's defaults).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 57] = b"narenas:1,tcache:false,dirty_decay_ms:0,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Few blocking threads: policy calls are short, and every extra thread gets its own allocator arena.
    let runtime = match tokio::runtime::Builder::new_multi_thread().max_blocking_threads(8).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.execute()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
