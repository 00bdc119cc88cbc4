//! Test helpers: keys generated in-process, hand-built tokens (so that malformed and hostile
//! ones can be made too), and a tiny HTTP/1.1 IdP on 127.0.0.1:0.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub fn install_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key with the kid it is published under.
#[derive(Clone)]
pub enum TestKey {
    Rsa(Arc<RsaKeyPair>, String),
    Ec(Arc<EcdsaKeyPair>, String),
}

impl TestKey {
    /// RSA 2048 generation is slow, so tests share a few keys.
    pub fn rsa(n: usize) -> TestKey {
        static KEYS: OnceLock<Vec<Arc<RsaKeyPair>>> = OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            (0..2)
                .map(|_| Arc::new(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()))
                .collect()
        });
        TestKey::Rsa(keys[n].clone(), format!("rsa-{n}"))
    }

    pub fn ec(kid: &str) -> TestKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        TestKey::Ec(Arc::new(pair), kid.to_owned())
    }

    /// A P-384 key, for ES384.
    pub fn ec384(kid: &str) -> TestKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
        TestKey::Ec(Arc::new(pair), kid.to_owned())
    }

    /// Whether this is a P-384 key (its uncompressed point is 97 bytes).
    fn is_p384(pair: &EcdsaKeyPair) -> bool {
        pair.public_key().as_ref().len() == 97
    }

    pub fn kid(&self) -> &str {
        match self {
            TestKey::Rsa(_, k) | TestKey::Ec(_, k) => k,
        }
    }

    pub fn alg(&self) -> &'static str {
        match self {
            TestKey::Rsa(..) => "RS256",
            TestKey::Ec(pair, _) if Self::is_p384(pair) => "ES384",
            TestKey::Ec(..) => "ES256",
        }
    }

    pub fn jwk_json(&self) -> Value {
        match self {
            TestKey::Rsa(pair, kid) => {
                let c = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(&c.n), "e": b64(&c.e)})
            }
            TestKey::Ec(pair, kid) => {
                let point = pair.public_key().as_ref();
                let (x, y) = point[1..].split_at((point.len() - 1) / 2);
                let crv = if Self::is_p384(pair) {
                    "P-384"
                } else {
                    "P-256"
                };
                json!({"kty": "EC", "crv": crv, "kid": kid, "use": "sig",
                       "x": b64(x), "y": b64(y)})
            }
        }
    }

    pub fn jwk(&self) -> Jwk {
        serde_json::from_value(self.jwk_json()).unwrap()
    }

    /// The RSA modulus bytes, as an attacker would use them for an HS256 "secret".
    pub fn public_bytes(&self) -> Vec<u8> {
        match self {
            TestKey::Rsa(pair, _) => PublicKeyComponents::<Vec<u8>>::from(pair.public_key()).n,
            TestKey::Ec(pair, _) => pair.public_key().as_ref().to_vec(),
        }
    }

    pub fn sign_bytes(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            TestKey::Rsa(pair, _) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig).unwrap();
                sig
            }
            TestKey::Ec(pair, _) => pair.sign(&rng, msg).unwrap().as_ref().to_vec(),
        }
    }

    /// A token with the default header (`alg` and `kid` of this key).
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(
            &json!({"alg": self.alg(), "kid": self.kid(), "typ": "JWT"}),
            claims,
        )
    }

    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        format!("{input}.{}", b64(&self.sign_bytes(input.as_bytes())))
    }
}

pub fn jwks(keys: &[&TestKey]) -> JwkSet {
    JwkSet {
        keys: keys.iter().map(|k| k.jwk()).collect(),
    }
}

/// A minimal OpenID provider: discovery at the usual path, keys at `/jwks`.
pub struct MockIdp {
    pub issuer: String,
    state: Arc<Mutex<IdpState>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

struct IdpState {
    discovery: Value,
    jwks: Value,
    down: bool,
}

impl MockIdp {
    pub async fn start(keys: &[&TestKey]) -> MockIdp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(IdpState {
            discovery: json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}),
            jwks: json!({"keys": keys.iter().map(|k| k.jwk_json()).collect::<Vec<_>>()}),
            down: false,
        }));
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let (st, h) = (state.clone(), hits.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, st.clone(), h.clone()));
            }
        });
        MockIdp {
            issuer,
            state,
            hits,
            task,
        }
    }

    pub fn set_keys(&self, keys: &[&TestKey]) {
        self.state.lock().unwrap().jwks =
            json!({"keys": keys.iter().map(|k| k.jwk_json()).collect::<Vec<_>>()});
    }

    pub fn set_jwks_json(&self, v: Value) {
        self.state.lock().unwrap().jwks = v;
    }

    pub fn set_discovery(&self, v: Value) {
        self.state.lock().unwrap().discovery = v;
    }

    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    pub fn jwks_hits(&self) -> usize {
        self.hits.lock().unwrap().get("/jwks").copied().unwrap_or(0)
    }
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    state: Arc<Mutex<IdpState>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let (status, body) = {
        let s = state.lock().unwrap();
        match path.as_str() {
            _ if s.down => ("500 Internal Server Error", "{}".to_owned()),
            "/.well-known/openid-configuration" => ("200 OK", s.discovery.to_string()),
            "/jwks" => ("200 OK", s.jwks.to_string()),
            _ => ("404 Not Found", "{}".to_owned()),
        }
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}
