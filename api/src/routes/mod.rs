//! Route groups, one module each.

pub mod capsules;
pub mod chat;
pub mod entries;
pub mod erasure;
pub mod health;
pub mod media;
pub mod members;
pub mod parents;
pub mod prompts;
pub mod web;
