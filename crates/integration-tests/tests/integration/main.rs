//! The one integration-test binary. Each adapter suite runs the same checks
//! against the embedded implementation and the production one on its real
//! server; the end-to-end tests start whole fleets of real processes.

mod blob;
mod cache;
mod code_index;
mod e2e;
mod mcp;
mod providers;
mod queue;
mod rest;
mod reviews;
mod secrets;
mod store;
mod webhooks;
mod worker;
