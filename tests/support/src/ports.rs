//! Loopback ports for child servers.

use std::time::UNIX_EPOCH;

/// A loopback port for a child server that binds it later: one no other
/// test of this process was given, free now, and below Linux's ephemeral
/// range (32768-60999), from which outgoing connections take their source
/// ports (a port from there could be taken by a client between this choice
/// and the child's bind).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    for i in 0..12_000u32 {
        let port =
            20_000 + u16::try_from((seed.wrapping_add(i.wrapping_mul(7919))) % 12_000).unwrap();
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free loopback port between 20000 and 32000");
}
