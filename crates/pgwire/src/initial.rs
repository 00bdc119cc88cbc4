//! The untagged packets a connection starts with: StartupMessage, SSLRequest,
//! GSSENCRequest and CancelRequest
//! (<https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP>).

use bytes::Bytes;

use crate::WireError;
use crate::body::Body;

/// The "protocol version" of an SSLRequest: 1234.5679.
pub const SSL_REQUEST_CODE: i32 = 80_877_103;
/// The "protocol version" of a GSSENCRequest: 1234.5680.
pub const GSSENC_REQUEST_CODE: i32 = 80_877_104;
/// The "protocol version" of a CancelRequest: 1234.5678.
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// The longest cancel key protocol 3.2 allows; 3.0 keys are 4 bytes.
const MAX_CANCEL_KEY: usize = 256;

/// One startup-phase packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initial {
    Startup(Startup),
    SslRequest,
    GssEncRequest,
    /// A request to cancel the query running on the session whose BackendKeyData was
    /// `(pid, secret)`. The secret is 4 bytes in protocol 3.0.
    Cancel {
        pid: i32,
        secret: Bytes,
    },
}

/// A StartupMessage: protocol 3.`minor` and its parameters in the order sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Startup {
    pub minor: u16,
    pub params: Vec<(String, String)>,
}

impl std::fmt::Debug for Startup {
    // Parameter values can carry secrets (`options=-c ...`), so only names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Startup")
            .field("minor", &self.minor)
            .field("params", &names)
            .finish()
    }
}

impl Startup {
    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Initial {
    /// Parses a packet without its length word.
    pub(crate) fn parse(packet: Bytes) -> Result<Self, WireError> {
        let mut body = Body::new(packet, "startup");
        let code = body.i32()?;
        match code {
            SSL_REQUEST_CODE => body.finish().map(|()| Initial::SslRequest),
            GSSENC_REQUEST_CODE => body.finish().map(|()| Initial::GssEncRequest),
            CANCEL_REQUEST_CODE => {
                let pid = body.i32()?;
                let secret = body.rest();
                if secret.len() < 4 || secret.len() > MAX_CANCEL_KEY {
                    return Err(WireError::malformed("cancel request", "bad key length"));
                }
                Ok(Initial::Cancel { pid, secret })
            }
            _ => parse_startup(code, body).map(Initial::Startup),
        }
    }
}

fn parse_startup(code: i32, mut body: Body) -> Result<Startup, WireError> {
    // The version is two u16 halves, major then minor.
    let major = (code >> 16) as u16;
    let minor = (code & 0xffff) as u16;
    if major != 3 {
        return Err(WireError::UnsupportedVersion { major, minor });
    }
    let mut params = Vec::new();
    loop {
        let name = body.utf8()?;
        if name.is_empty() {
            break;
        }
        let value = body.utf8()?;
        params.push((name, value));
    }
    body.finish()?;
    Ok(Startup { minor, params })
}
