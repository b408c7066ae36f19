//! JOSE helpers: public keys parsed once and signature checks with either
//! backend (`crypto.rs`), private keys that sign (`signing.rs`).

pub(crate) mod crypto;
#[cfg(any(feature = "signing", feature = "testing"))]
pub(crate) mod signing;
