//! Command-line shape (DESIGN.md §10). `--config`, `--output` and `--url` are global and
//! accepted in any position.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Layer 7 access gateway for AI agents",
    after_help = "Logging: logs go to stderr. The filter is PORTCULLIS_LOG, else RUST_LOG, \
        else \"warn,portcullis=info\", in tracing's EnvFilter syntax (e.g. RUST_LOG=debug, or \
        PORTCULLIS_LOG=portcullis_proxy_postgres=debug,info). Tokens are never logged, at any level."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Config file (else PORTCULLIS_CONFIG, else ./portcullis.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output format for results.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// A running gateway's API (else PORTCULLIS_URL, else http://{server.listen}).
    #[arg(long, global = true, env = "PORTCULLIS_URL", value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve,
    /// Check the config file and the policies it names.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Ask the policies what would happen.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Tokens from the embedded dev issuer.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Verify and export the audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Ask a running gateway who a token is.
    Whoami(WhoamiArgs),
    /// Just-in-time approvals: list, show, approve or deny held commands.
    #[command(subcommand)]
    Reviews(ReviewsCmd),
    /// Connections of a running gateway: `refresh NAME` reads its catalog again now.
    #[command(subcommand)]
    Connections(ConnectionsCmd),
    /// Recorded sessions: list, show, replay (read offline from the state).
    #[command(subcommand)]
    Sessions(SessionsCmd),
}

#[derive(Debug, Subcommand)]
pub enum SessionsCmd {
    /// Sessions that opened in a period (default: the last 7 days).
    List(SessionsListArgs),
    /// Who, which identity and token, connection, duration, decisions, masking, recording.
    Show(SessionIdArgs),
    /// The recorded timeline, with its original timing.
    Replay(SessionsReplayArgs),
}

#[derive(Debug, Args)]
pub struct SessionsListArgs {
    /// Only this principal (subject).
    #[arg(long)]
    pub principal: Option<String>,
    #[arg(long)]
    pub connection: Option<String>,
    /// RFC 3339 time, or a duration meaning that long ago (e.g. 24h). Default 7d.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct SessionIdArgs {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct SessionsReplayArgs {
    pub id: String,
    /// Play faster (2 = twice as fast).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Print the whole timeline at once.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsCmd {
    /// Read the connection's catalog (relations, views, functions, triggers, rules) again
    /// now, e.g. after changing them outside the gateway (action admin.refresh).
    Refresh(ConnectionsRefreshArgs),
}

#[derive(Debug, Args)]
pub struct ConnectionsRefreshArgs {
    #[command(flatten)]
    pub auth: ReviewsToken,
    /// The connection's name.
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum ReviewsCmd {
    /// Reviews you asked for or may decide (default: pending).
    List(ReviewsListArgs),
    /// One review; `--wait 30s` waits for it to leave pending.
    Show(ReviewsShowArgs),
    /// Approve a held command (your token must be in a reviewer group; not your own request).
    Approve(ReviewsVerdictArgs),
    /// Deny a held command.
    Deny(ReviewsVerdictArgs),
}

#[derive(Debug, Args)]
pub struct ReviewsToken {
    /// The reviewer's bearer token (else PORTCULLIS_TOKEN).
    #[arg(long, env = "PORTCULLIS_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Debug, Args)]
pub struct ReviewsListArgs {
    #[command(flatten)]
    pub auth: ReviewsToken,
    /// pending, approved, denied, expired, executed or all.
    #[arg(long, default_value = "pending")]
    pub status: String,
}

#[derive(Debug, Args)]
pub struct ReviewsShowArgs {
    #[command(flatten)]
    pub auth: ReviewsToken,
    pub id: String,
    /// Wait up to this long (e.g. 30s) for the review to be decided.
    #[arg(long)]
    pub wait: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReviewsVerdictArgs {
    #[command(flatten)]
    pub auth: ReviewsToken,
    pub id: String,
    /// Why: stored with the decision and shown to the agent on a denial.
    #[arg(long, default_value = "")]
    pub comment: String,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Load the config and policies and list every problem; exit 1 if there is an error.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Decide a hypothetical request. Exit 0 allow, 3 deny, 4 approval required.
    Check(PolicyCheckArgs),
}

#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    #[arg(long)]
    pub subject: String,
    /// Comma-separated groups.
    #[arg(long, value_delimiter = ',', default_value = "")]
    pub groups: Vec<String>,
    /// A connection from the config; omit for admin actions on the gateway.
    #[arg(long)]
    pub connection: Option<String>,
    #[arg(long)]
    pub action: String,
    /// Classifier facts as JSON, e.g. '{"sql":{"has_where":false}}'.
    #[arg(long, default_value = "null")]
    pub context: String,
    #[arg(long)]
    pub client_id: Option<String>,
    #[arg(long, default_value = "portcullis-policy-check")]
    pub issuer: String,
    #[arg(long)]
    pub human: bool,
    #[arg(long)]
    pub source_ip: Option<std::net::IpAddr>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Mint a short-lived token with the embedded dev issuer.
    Mint(MintArgs),
}

#[derive(Debug, Args)]
pub struct MintArgs {
    #[arg(long)]
    pub subject: String,
    /// Comma-separated groups.
    #[arg(long, value_delimiter = ',', default_value = "")]
    pub groups: Vec<String>,
    /// Lifetime, e.g. 15m.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub ttl: std::time::Duration,
    #[arg(long)]
    pub client_id: Option<String>,
    /// Default: the dev issuer's configured audience.
    #[arg(long)]
    pub audience: Option<String>,
    /// Extra claim k=v (repeatable); v is parsed as JSON when it can be.
    #[arg(long = "claim", value_name = "K=V")]
    pub claims: Vec<String>,
    /// Mark the token as a human's (reviewers).
    #[arg(long)]
    pub human: bool,
    /// Add an RFC 8693 `act` claim naming the acting party.
    #[arg(long)]
    pub actor: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain and checkpoint signatures; names the first broken link.
    Verify(VerifyArgs),
    /// Export events (JSONL as stored, or OCSF for SIEMs).
    Export(ExportArgs),
    /// An evidence report for a period: identities, connections, commands by outcome,
    /// approvals, masking, and the chain's verification (HTML or Markdown).
    Report(ReportArgs),
    /// Print the public key that verifies this gateway's checkpoints.
    Pubkey,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Html,
    Md,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// RFC 3339 time, or a duration meaning that long ago (e.g. 30d). Default 30d.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A public key given out of band (`ed25519:...`, or @FILE).
    #[arg(long)]
    pub pubkey: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Ocsf,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// RFC 3339 time, or a duration meaning that long ago (e.g. 24h).
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// The bearer token (else PORTCULLIS_TOKEN).
    #[arg(long, env = "PORTCULLIS_TOKEN", hide_env_values = true)]
    pub token: String,
}
