//! Helpers the workspace's tests share: loopback ports for child servers
//! and a real `redis-server`. It depends on nothing in the workspace, so a
//! dev-dependency on it turns no feature of the main crate on.

mod ports;
pub mod redis_server;

pub use ports::free_port;
