//! Logs in to the server with the target's credentials: trust, cleartext, MD5, or
//! SCRAM-SHA-256 (without channel binding) with postgres-protocol's client
//! (<https://www.postgresql.org/docs/current/sasl-authentication.html>).
//!
//! Errors carry the server's words for the gateway log only; the client is told "upstream
//! authentication failed" (see [`crate::respond`]), because the server's message can name
//! the role or hint at its password.

use bytes::BytesMut;
use portcullis_pgwire::{
    Authentication, Backend, FrameReader, FrameWriter, encode_frontend, parse_backend,
};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::PgError;

fn failed(why: impl std::fmt::Display) -> PgError {
    PgError::UpstreamAuth(why.to_string())
}

/// Runs the exchange until AuthenticationOk.
pub(crate) async fn authenticate<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    user: &str,
    password: Option<&SecretString>,
) -> Result<(), PgError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut scram: Option<ScramSha256> = None;
    loop {
        let frame = reader
            .next_frame()
            .await
            .map_err(PgError::from_upstream)?
            .ok_or_else(|| failed("the server closed the connection during authentication"))?;
        let request = match parse_backend(&frame).map_err(PgError::UpstreamProtocol)? {
            Backend::Authentication(a) => a,
            Backend::ErrorResponse(e) => {
                let code = String::from_utf8_lossy(e.code().unwrap_or_default()).into_owned();
                let msg = String::from_utf8_lossy(e.message().unwrap_or_default()).into_owned();
                return Err(failed(format!("{code}: {msg}")));
            }
            Backend::NegotiateProtocolVersion { .. } | Backend::NoticeResponse(_) => continue,
            other => return Err(failed(format!("unexpected message {other:?}"))),
        };
        let mut out = BytesMut::new();
        if respond(request, &mut out, &mut scram, user, password)? {
            return Ok(());
        }
        if !out.is_empty() {
            writer.push_bytes(out.freeze());
            writer.flush().await.map_err(failed)?;
        }
    }
}

/// Answers one authentication request into `out`; `true` once authenticated.
fn respond(
    request: Authentication,
    out: &mut BytesMut,
    scram: &mut Option<ScramSha256>,
    user: &str,
    password: Option<&SecretString>,
) -> Result<bool, PgError> {
    let secret = || {
        password
            .map(|p| p.expose_secret().as_bytes())
            .ok_or_else(|| failed("the server asks for a password and the connection has none"))
    };
    let encode = |e: portcullis_pgwire::WireError| failed(e);
    match request {
        // A server that skips SASLFinal never proved it knows the password.
        Authentication::Ok if scram.is_some() => {
            return Err(failed(
                "the server ended SCRAM without proving its identity",
            ));
        }
        Authentication::Ok => return Ok(true),
        Authentication::CleartextPassword => {
            encode_frontend::password(out, secret()?).map_err(encode)?;
        }
        Authentication::Md5Password { salt } => {
            let hashed = md5_hash(user.as_bytes(), secret()?, salt);
            encode_frontend::password(out, hashed.as_bytes()).map_err(encode)?;
        }
        Authentication::Sasl { mechanisms } => {
            if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                return Err(failed(format!(
                    "no supported SASL mechanism in {mechanisms:?}"
                )));
            }
            // No channel binding: "n,," tells the server the client does not support it, which
            // a server offering SCRAM-SHA-256-PLUS accepts (unlike "y,,").
            let client = ScramSha256::new(secret()?, ChannelBinding::unsupported());
            encode_frontend::sasl_initial_response(out, SCRAM_SHA_256, client.message())
                .map_err(encode)?;
            *scram = Some(client);
        }
        Authentication::SaslContinue(data) => {
            let client = scram
                .as_mut()
                .ok_or_else(|| failed("SASLContinue before SASL"))?;
            client.update(&data).map_err(failed)?;
            encode_frontend::sasl_response(out, client.message()).map_err(encode)?;
        }
        Authentication::SaslFinal(data) => {
            // Verifies the server's signature: a server that does not know the password
            // cannot complete the exchange.
            let client = scram
                .as_mut()
                .ok_or_else(|| failed("SASLFinal before SASL"))?;
            client.finish(&data).map_err(failed)?;
            *scram = None;
        }
        Authentication::Other(code) => {
            return Err(failed(format!("unsupported authentication request {code}")));
        }
    }
    Ok(false)
}
