//! Typed JWT claims ([RFC 7519 §4.1]), the time/audience/lifetime checks, and the mapping of
//! verified claims to a [`Principal`].
//!
//! [RFC 7519 §4.1]: https://www.rfc-editor.org/rfc/rfc7519#section-4.1

use serde_json::{Map, Value};

use crate::principal::{Actor, Principal, PrincipalKind};
use crate::reason::{Reason, Rejection};
use crate::settings::{IssuerSettings, StaticGroups};

/// Deeper `act` chains than this are refused: real delegation is a few hops, and the bound
/// keeps a hostile token from costing much.
const MAX_ACT_DEPTH: usize = 16;

/// The registered claims with their types checked, plus the whole object for issuer-specific
/// claims (groups, kind).
#[derive(Debug)]
pub(crate) struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
    pub client_id: Option<String>,
    pub delegation: Vec<Actor>,
    map: Map<String, Value>,
}

impl Claims {
    /// Type-checks the registered claims; the error is a detail for `claims_invalid`.
    pub fn from_map(map: Map<String, Value>) -> Result<Self, String> {
        let client_id = match string(&map, "client_id")? {
            Some(c) => Some(c),
            None => string(&map, "azp")?,
        };
        Ok(Self {
            iss: string(&map, "iss")?,
            sub: string(&map, "sub")?,
            aud: audience(map.get("aud"))?,
            exp: numeric_date(&map, "exp")?,
            nbf: numeric_date(&map, "nbf")?,
            iat: numeric_date(&map, "iat")?,
            jti: string(&map, "jti")?,
            client_id,
            delegation: actors(map.get("act"))?,
            map,
        })
    }

    /// The checks from `exp_missing` to `sub_missing`, in that order.
    pub fn check(&self, s: &IssuerSettings, now: i64) -> Result<(), Rejection> {
        let leeway = leeway_secs(s);
        let fail = |r: Reason, d: &str| Err(Rejection::new(r, d));
        let Some(exp) = self.exp else {
            return fail(Reason::ExpMissing, "the token has no 'exp'");
        };
        if now >= exp.saturating_add(leeway) {
            return fail(Reason::Expired, "'exp' is in the past");
        }
        if self.nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
            return fail(Reason::NotYetValid, "'nbf' is in the future");
        }
        if self.iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
            return fail(Reason::IatInFuture, "'iat' is in the future");
        }
        if self.aud.is_empty() {
            return fail(Reason::AudMissing, "the token has no 'aud'");
        }
        if !self.aud.iter().any(|a| s.audiences.contains(a)) {
            return fail(
                Reason::AudMismatch,
                "no 'aud' value is an audience of this gateway",
            );
        }
        let start = self.iat.or(self.nbf).unwrap_or(now);
        let max = i64::try_from(s.max_token_lifetime.as_secs()).unwrap_or(i64::MAX);
        if exp.saturating_sub(start) > max {
            let d = format!("the token lives longer than the {max} s this issuer allows");
            return Err(Rejection::new(Reason::LifetimeTooLong, d));
        }
        match self.sub.as_deref() {
            Some(sub) if !sub.is_empty() => Ok(()),
            _ => fail(Reason::SubMissing, "the token has no 'sub'"),
        }
    }

    /// Builds the principal from claims that passed the signature and [`Claims::check`].
    pub fn into_principal(
        self,
        s: &IssuerSettings,
        static_groups: &[StaticGroups],
    ) -> Result<Principal, String> {
        let subject = self.sub.unwrap_or_default();
        let mut groups = groups(self.map.get(&s.groups_claim))?;
        for entry in static_groups
            .iter()
            .filter(|g| g.matches(&subject, self.client_id.as_deref()))
        {
            groups.extend(entry.groups.iter().cloned());
        }
        groups.sort_unstable();
        groups.dedup();
        let kind = match s.kind_claim.as_ref().map(|c| self.map.get(c)) {
            Some(Some(Value::String(v))) if v == "human" => PrincipalKind::Human,
            Some(Some(Value::String(v))) if v == "machine" => PrincipalKind::Machine,
            _ => s.kind,
        };
        Ok(Principal {
            subject,
            issuer: s.issuer.clone(),
            client_id: self.client_id,
            groups,
            kind,
            delegation: self.delegation,
            token_id: self.jti,
            expires_at: self.exp.unwrap_or_default(),
            // The same sum `check` refuses the token at.
            valid_until: self.exp.unwrap_or_default().saturating_add(leeway_secs(s)),
            issued_at: self.iat,
        })
    }
}

/// The issuer's clock-skew allowance in whole seconds.
fn leeway_secs(s: &IssuerSettings) -> i64 {
    i64::try_from(s.leeway.as_secs()).unwrap_or(i64::MAX)
}

fn string(map: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) => Ok(Some(v.clone())),
        Some(_) => Err(format!("'{name}' is not a string")),
    }
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
fn audience(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(a)) => Ok(vec![a.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "'aud' has a non-string".to_owned())
            })
            .collect(),
        Some(_) => Err("'aud' is neither a string nor an array".to_owned()),
    }
}

/// A NumericDate may have a fraction (RFC 7519 §2); it is truncated to whole seconds.
fn numeric_date(map: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                return Ok(Some(i));
            }
            match n.as_f64() {
                // `as` saturates at the i64 bounds, which the checks then treat as far past
                // or far future.
                Some(f) if f.is_finite() => Ok(Some(f.trunc() as i64)),
                _ => Err(format!("'{name}' is not a usable number")),
            }
        }
        Some(_) => Err(format!("'{name}' is not a number")),
    }
}

/// Flattens the RFC 8693 §4.1 `act` chain, current actor first.
fn actors(mut v: Option<&Value>) -> Result<Vec<Actor>, String> {
    let mut out = Vec::new();
    while let Some(value) = v {
        let Value::Object(act) = value else {
            return Err("'act' is not an object".to_owned());
        };
        if out.len() == MAX_ACT_DEPTH {
            return Err(format!("'act' is nested deeper than {MAX_ACT_DEPTH}"));
        }
        let Some(subject) = string(act, "sub")? else {
            return Err("an 'act' has no 'sub'".to_owned());
        };
        out.push(Actor {
            subject,
            client_id: string(act, "client_id")?,
            issuer: string(act, "iss")?,
        });
        v = act.get("act");
    }
    Ok(out)
}

/// Groups as an array of strings, or one string separated by spaces and/or commas (as some
/// IdPs emit scopes-like claims).
fn groups(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split([' ', ','])
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "the groups claim has a non-string".to_owned())
            })
            .collect(),
        Some(_) => Err("the groups claim is neither a string nor an array".to_owned()),
    }
}
