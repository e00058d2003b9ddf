//! Test stand-ins for services that cannot run on a test machine.

pub mod qdrant;
pub mod services;
