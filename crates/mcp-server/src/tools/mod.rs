//! The tools of this build, by toolset.

pub mod code;
pub mod contexts;
pub mod core;
pub mod issues;
pub mod pull_requests;
pub mod repos;

use crate::registry::Registry;

/// Registers every production tool.
pub fn register(registry: &mut Registry) {
    core::register(registry);
    contexts::register(registry);
    code::register(registry);
    pull_requests::register(registry);
    repos::register(registry);
    issues::register(registry);
}
