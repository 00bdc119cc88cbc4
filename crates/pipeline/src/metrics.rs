//! Prometheus metrics of the pipeline. Labels carry codes and outcomes only: never a subject,
//! a token or a value, so metrics cannot leak identities or secrets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    result: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

pub struct Metrics {
    registry: Registry,
    tokens: Family<TokenLabels, Counter>,
    decisions: Family<OutcomeLabels, Counter>,
    audit: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let tokens = Family::<TokenLabels, Counter>::default();
        let decisions = Family::<OutcomeLabels, Counter>::default();
        let audit = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "token_validations",
            "Bearer tokens validated, by result and reason code",
            tokens.clone(),
        );
        registry.register(
            "decisions",
            "Policy decisions, by outcome",
            decisions.clone(),
        );
        registry.register(
            "audit_writes",
            "Audit events written, by outcome",
            audit.clone(),
        );
        Self {
            registry,
            tokens,
            decisions,
            audit,
        }
    }

    pub(crate) fn token(&self, result: &'static str, reason: &'static str) {
        self.tokens
            .get_or_create(&TokenLabels { result, reason })
            .inc();
    }

    pub(crate) fn decision(&self, outcome: &'static str) {
        self.decisions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub(crate) fn audit_ok(&self) {
        self.audit
            .get_or_create(&OutcomeLabels { outcome: "ok" })
            .inc();
    }

    pub(crate) fn audit_failed(&self) {
        self.audit
            .get_or_create(&OutcomeLabels { outcome: "error" })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
