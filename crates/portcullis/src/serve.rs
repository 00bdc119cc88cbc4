//! `portcullis serve`: build the pipeline from the config, bind the listener, announce it,
//! serve until SIGTERM/SIGINT, reload policies on SIGHUP, and close the audit cleanly.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::FutureExt;
use portcullis_api::{AppState, Reload};
use portcullis_audit::{AuditSettings, Auditor, Event, SigningKey};
use portcullis_config::{Config, Severity};
use portcullis_identity::{Revocation, Validator};
use portcullis_pipeline::{Engine, EngineSettings, Pipeline};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::cli::Global;
use crate::{approvals, runtime};

pub async fn run(g: &Global) -> anyhow::Result<ExitCode> {
    let cfg = runtime::load_config(g.config.as_deref())?;
    let errors: Vec<String> = cfg
        .check()
        .into_iter()
        .inspect(|p| {
            if p.severity == Severity::Warning {
                tracing::warn!("{p}");
            }
        })
        .filter(|p| p.severity == Severity::Error)
        .map(|p| p.to_string())
        .collect();
    if !errors.is_empty() {
        bail!("the config has problems:\n{}", errors.join("\n"));
    }
    std::fs::create_dir_all(&cfg.server.state_dir)
        .with_context(|| format!("creating {}", cfg.server.state_dir.display()))?;
    let crash = cfg.audit.durability == portcullis_config::Durability::Crash;
    let durability = if crash {
        portcullis_store::Durability::Crash
    } else {
        portcullis_store::Durability::Fsync
    };
    let store = portcullis_store::open_with(cfg.store_url(), durability)
        .await
        .context("opening the state store")?;
    let key = SigningKey::load_or_create(&cfg.server.state_dir)?;
    let auditor = Auditor::start(
        store.clone(),
        key,
        AuditSettings {
            node: cfg.audit.node.clone(),
            checkpoint_every_events: cfg.audit.checkpoint_every_events,
            checkpoint_every: cfg.audit.checkpoint_every,
            sync_every: crash.then_some(cfg.audit.sync_every),
            journal: Some(runtime::audit_journal(&cfg)),
            ..AuditSettings::default()
        },
    )
    .await?;
    let policy = runtime::load_policies(&cfg)
        .map_err(|ps| anyhow::anyhow!("the policies do not compile:\n{}", ps.join("\n")))?;
    let dev = runtime::dev_issuer(&cfg)?;
    let validator = Validator::new(runtime::identity_settings(&cfg, dev.as_deref())?)?;
    load_revocations(&cfg, &validator, store.as_ref()).await?;
    let pipeline = Arc::new(Pipeline::new(validator.clone(), policy, auditor.clone()));

    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .with_context(|| format!("binding {}", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let (reviews, notifier) = approvals::start(&cfg, store.clone(), pipeline.clone())?;
    let recordings = start_recordings(&cfg, &pipeline).await?;
    let sweeper = reviews.spawn_sweeper(Duration::from_secs(5), shutdown.clone());
    let mut engine = Engine::new(
        pipeline.clone(),
        EngineSettings {
            hold: cfg.approvals.hold,
            masking: runtime::masking_settings(&cfg)?,
        },
    )
    .with_reviews(reviews.clone());
    if let Some(r) = &recordings {
        engine = engine.with_recordings(r.clone());
    }
    let engine = Arc::new(engine);
    let doors = crate::doors::start(&crate::doors::Setup {
        cfg: &cfg,
        engine: &engine,
        shutdown: &shutdown,
    })
    .await?;
    let exec: Vec<Arc<dyn portcullis_pipeline::ExecDoor>> =
        doors.iter().filter_map(|d| d.exec.clone()).collect();
    announce(addr, &doors);
    let started = Event {
        kind: "gateway.start".into(),
        outcome: Some("ok".into()),
        data: Some(serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "listen": addr.to_string(),
            "policies": pipeline.policy().len(),
            "store": store.backend(),
        })),
        ..Event::default()
    };
    auditor
        .record(started)
        .await
        .context("writing the start event")?;

    let refresh = validator.clone();
    tokio::spawn(async move { refresh.refresh_all().await });
    let refresher = validator.spawn_refresh(Duration::from_secs(300));
    let reload = reloader(cfg.path.clone(), pipeline.clone());
    let hup = tokio::spawn(reload_on_sighup(reload.clone()));

    let state = AppState {
        pipeline: pipeline.clone(),
        store: store.clone(),
        dev_issuer: dev,
        reload,
        max_body_bytes: cfg.server.max_body_bytes,
        reviews: Some(reviews),
        recordings_dir: recordings.as_ref().map(|r| r.dir().to_path_buf()),
        exec,
        exec_limits: (cfg.exec.max_rows, cfg.exec.max_bytes),
    };
    let app = portcullis_api::router(state);
    tracing::info!(%addr, "portcullis is serving");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown({
        let shutdown = shutdown.clone();
        async move {
            shutdown_signal().await;
            shutdown.cancel();
        }
    })
    .await?;
    shutdown.cancel();
    for d in doors {
        let _ = tokio::time::timeout(Duration::from_secs(10), d.task).await;
    }

    if let Some(r) = &recordings {
        r.shutdown().await;
    }
    hup.abort();
    refresher.abort();
    let _ = sweeper.await;
    notifier.shutdown(Duration::from_secs(5)).await;
    let stopped = Event {
        kind: "gateway.stop".into(),
        outcome: Some("ok".into()),
        ..Event::default()
    };
    if let Err(e) = auditor.record(stopped).await {
        tracing::error!(error = %e, "writing the stop event failed");
    }
    auditor.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

/// The first line on stdout tells scripts and tests where the gateway listens (the port may
/// have been 0).
fn announce(addr: SocketAddr, doors: &[crate::doors::Started]) {
    use std::io::Write;
    let mut line = serde_json::json!({ "event": "listening", "api": format!("http://{addr}") });
    for d in doors {
        line[d.name] = serde_json::Value::String(d.addr.to_string());
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn load_revocations(
    cfg: &Config,
    v: &Validator,
    store: &dyn portcullis_store::Store,
) -> anyhow::Result<()> {
    for r in runtime::config_revocations(cfg) {
        v.revocations().add(r);
    }
    for row in store.revocations().await? {
        match Revocation::from_parts(&row.kind, &row.value) {
            Some(r) => {
                v.revocations().add(r);
            }
            None => {
                tracing::warn!(kind = %row.kind, "ignoring a stored revocation of unknown kind")
            }
        }
    }
    Ok(())
}

/// Re-reads the config file's policy section and swaps the compiled set in. A bad set keeps
/// the old one. Either way the attempt is audited.
fn reloader(path: std::path::PathBuf, pipeline: Arc<Pipeline>) -> Reload {
    Arc::new(move || {
        let path = path.clone();
        let pipeline = pipeline.clone();
        async move {
            let result = portcullis_config::load(&path)
                .map_err(|e| vec![e.to_string()])
                .and_then(|cfg| runtime::load_policies(&cfg));
            let (outcome, detail, n) = match &result {
                Ok(engine) => ("ok", None, engine.len()),
                Err(ps) => ("error", Some(ps.join("\n")), 0),
            };
            let event = Event {
                kind: "config.reload".into(),
                outcome: Some(outcome.into()),
                detail,
                data: Some(serde_json::json!({ "policies": n })),
                ..Event::default()
            };
            if pipeline.record(event).await.is_err() {
                return Err(vec![
                    "the audit trail is unavailable; policies not reloaded".into(),
                ]);
            }
            let engine = result?;
            let n = engine.len();
            pipeline.swap_policy(engine);
            tracing::info!(policies = n, "policies reloaded");
            Ok(n)
        }
        .boxed()
    })
}

async fn reload_on_sighup(reload: Reload) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload with POST /v1/admin/reload");
        return;
    };
    while hup.recv().await.is_some() {
        if let Err(problems) = reload().await {
            tracing::error!(problems = %problems.join("; "), "reload failed; old policies kept");
        }
    }
}

async fn shutdown_signal() {
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// Starts the session recorder. Recordings a crash left open are closed as interrupted first,
/// and each is audited with its hash, so `audit verify` can vouch for what they hold.
async fn start_recordings(
    cfg: &Config,
    pipeline: &Pipeline,
) -> anyhow::Result<Option<portcullis_recording::Recordings>> {
    if !cfg.recording.enabled {
        return Ok(None);
    }
    let settings = portcullis_recording::RecordingSettings {
        flush_every: cfg.recording.flush,
        ..portcullis_recording::RecordingSettings::new(cfg.recording.dir.clone())
    };
    let recordings = portcullis_recording::Recordings::start(settings)
        .with_context(|| format!("recordings in {}", cfg.recording.dir.display()))?;
    for r in recordings.recover()? {
        let event = Event {
            kind: "session.interrupted".into(),
            outcome: Some("error".into()),
            session_id: Some(r.session_id.clone()),
            data: Some(serde_json::json!({
                "ended": "interrupted",
                "recording": {
                    "file": r.path.file_name().map(|f| f.to_string_lossy().into_owned()),
                    "sha256": r.sha256,
                    "entries": r.entries,
                    "truncated_bytes": r.truncated_bytes,
                },
            })),
            ..Event::default()
        };
        pipeline
            .record(event)
            .await
            .map_err(|e| anyhow::anyhow!("auditing a recovered recording: {e}"))?;
    }
    Ok(Some(recordings))
}
