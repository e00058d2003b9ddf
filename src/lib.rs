//! The `dadly` binary's library half: settings, wiring and CLI commands, so
//! tests start the real app exactly as `dadly serve` does.

/// mimalloc instead of glibc's allocator: under a burst of requests glibc's
/// `malloc`/`free` took ~12% of the CPU (see BENCHMARKS.md). Set here, in the
/// library, so the server, its tests and the load test all run on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod app;
pub mod cli;
pub mod logs;
pub mod settings;
