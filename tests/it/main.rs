//! The integration tests: one test crate, so `cargo test` links once. One
//! module per concern; shared helpers in `common`.

mod common;

mod attacks;
mod audit;
mod bounded;
mod challenges;
mod client;
mod conformance;
mod cors;
mod differential;
mod dpop;
mod examples;
mod feature_tables;
mod hostile_server;
mod introspection;
mod jwks_cache;
mod mcp_fail_closed;
mod mcp_judgement;
mod mcp_lists;
mod mcp_policy;
mod mcp_wires;
mod metadata;
mod person_flow;
mod policy_file;
mod properties;
mod redis_store;
mod remote_jwks;
mod revocation;
mod scopes;
mod shared_store;
mod test_issuer;
mod token_cache;
mod validation;
