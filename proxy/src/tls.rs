//! TLS termination on the front side (feature `tls`): the `[tls]`
//! section's PEM certificate chain and private key, HTTP/2 and HTTP/1.1
//! offered by ALPN.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ConfigError, TlsConfig};

/// The acceptor for `tls`'s certificate and key.
pub fn acceptor(tls: &TlsConfig) -> Result<TlsAcceptor, ConfigError> {
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ConfigError(format!("[tls] cert_file {:?}: {e}", tls.cert_file)))?;
    if certs.is_empty() {
        return Err(ConfigError(format!(
            "[tls] cert_file {:?}: no certificate in it",
            tls.cert_file
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| ConfigError(format!("[tls] key_file {:?}: {e}", tls.key_file)))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("[tls]: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ConfigError(format!("[tls] the certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
