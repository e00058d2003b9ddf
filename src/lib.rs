//! The `dadly` binary's library half: settings, wiring and CLI commands, so
//! tests start the real app exactly as `dadly serve` does.

pub mod app;
pub mod cli;
pub mod logs;
pub mod settings;
