//! TLS on both sides: the certificate clients see (configured, or self-signed and kept in
//! `state_dir`), and the client configuration for each upstream's `sslmode`-like setting.
//!
//! Clients negotiate TLS with an SSLRequest
//! (<https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL>); the ALPN
//! name `postgresql` is offered and accepted as PostgreSQL 17 does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::PgError;
use crate::settings::{TlsFiles, UpstreamTls};

pub(crate) const CERT_FILE: &str = "pg-tls-cert.pem";
pub(crate) const KEY_FILE: &str = "pg-tls-key.pem";
const ALPN: &[u8] = b"postgresql";

fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

fn setup(what: &str, e: impl std::fmt::Display) -> PgError {
    PgError::Setup(format!("{what}: {e}"))
}

/// The server configuration for client connections.
pub(crate) fn server_config(
    files: Option<&TlsFiles>,
    state_dir: &Path,
) -> Result<Arc<ServerConfig>, PgError> {
    let files = match files {
        Some(f) => f.clone(),
        None => self_signed(state_dir)?,
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| setup(&format!("reading {}", files.cert.display()), e))?;
    if certs.is_empty() {
        return Err(setup(
            &files.cert.display().to_string(),
            "no certificate in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| setup(&format!("reading {}", files.key.display()), e))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| setup("TLS versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| setup("the TLS certificate and key do not fit", e))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The self-signed pair in `state_dir`, generated on first use. The key is written with
/// mode 0600 before any byte of it, so it is never readable by others.
fn self_signed(state_dir: &Path) -> Result<TlsFiles, PgError> {
    let files = TlsFiles {
        cert: state_dir.join(CERT_FILE),
        key: state_dir.join(KEY_FILE),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    std::fs::create_dir_all(state_dir)
        .map_err(|e| setup(&format!("creating {}", state_dir.display()), e))?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let pair = rcgen::generate_simple_self_signed(names)
        .map_err(|e| setup("generating a TLS certificate", e))?;
    write_private(&files.key, pair.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&files.cert, pair.cert.pem())
        .map_err(|e| setup(&format!("writing {}", files.cert.display()), e))?;
    tracing::info!(cert = %files.cert.display(), "generated a self-signed certificate for the PostgreSQL door");
    Ok(files)
}

fn write_private(path: &PathBuf, bytes: &[u8]) -> Result<(), PgError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| setup(&format!("writing {}", path.display()), e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| setup(&format!("writing {}", path.display()), e))
}

/// The client configuration for an upstream, or `None` for plaintext.
pub(crate) fn upstream_config(tls: &UpstreamTls) -> Result<Option<Arc<ClientConfig>>, PgError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| setup("TLS versions", e))?;
    let mut config = match tls {
        UpstreamTls::Disable => return Ok(None),
        UpstreamTls::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
            .with_no_client_auth(),
        UpstreamTls::VerifyFull { ca_file } => builder
            .with_root_certificates(roots(ca_file.as_deref())?)
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Some(Arc::new(config)))
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, PgError> {
    let mut store = RootCertStore::empty();
    let Some(path) = ca_file else {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| setup(&format!("reading {}", path.display()), e))?;
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(setup(
            &path.display().to_string(),
            "no usable CA certificate in the file",
        ));
    }
    Ok(store)
}

/// `sslmode=require`: encrypt, but take any certificate. The handshake signature is still
/// checked, so the connection is at least bound to the key the server presented.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
