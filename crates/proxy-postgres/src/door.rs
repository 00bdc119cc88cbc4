//! The door itself: shared state built once at start-up, and the accept loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use portcullis_pgwire::Limits;
use portcullis_pipeline::Engine;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache::StatementCache;
use crate::cancel::CancelMap;
use crate::error::PgError;
use crate::pool::Pool;
use crate::settings::{PgDoorSettings, PgTarget};
use crate::upstream::{self, LOGIN_TIMEOUT, Upstream, UpstreamConn};
use crate::{session, tls};

/// A configured target with what it takes to reach it.
pub(crate) struct TargetRt {
    pub(crate) target: PgTarget,
    pub(crate) conn: Arc<UpstreamConn>,
    /// Its idle server connections, and its budget of open ones.
    pub(crate) pool: Pool,
    /// What its server's catalog holds, as the door last read it.
    pub(crate) catalog: crate::catalog::CatalogCache,
}

impl TargetRt {
    /// A logged-in server connection for a session forwarding `forward`: from the pool, or
    /// a new login within the target's budget of server connections (see [`Pool::connect`]).
    pub(crate) async fn connect(
        &self,
        forward: &[(String, String)],
        limits: Limits,
    ) -> Result<Upstream, PgError> {
        self.pool
            .connect(forward, |slot| async move {
                let login = upstream::login(&self.conn, &self.target, forward, limits, slot);
                tokio::time::timeout(LOGIN_TIMEOUT, login)
                    .await
                    .unwrap_or_else(|_| Err(PgError::UpstreamConnect("login timed out".into())))
            })
            .await
    }
}

/// What every session shares.
pub(crate) struct Door {
    pub(crate) settings: PgDoorSettings,
    /// The session engine: authentication, decisions, audit, holds, masking, recording.
    pub(crate) engine: Arc<Engine>,
    pub(crate) targets: HashMap<String, Arc<TargetRt>>,
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) cache: StatementCache,
    pub(crate) cancels: Arc<CancelMap>,
    pub(crate) limits: Limits,
    /// Open sessions by principal and by connection, for the session limits.
    pub(crate) sessions: Arc<crate::limits::Sessions>,
}

/// The PostgreSQL door: build it once with [`PgDoor::new`], then [`PgDoor::serve`] a listener.
pub struct PgDoor {
    door: Arc<Door>,
}

impl std::fmt::Debug for PgDoor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.door.targets.keys().collect();
        names.sort();
        f.debug_struct("PgDoor").field("targets", &names).finish()
    }
}

impl PgDoor {
    /// Loads (or generates) the TLS certificate and prepares each target's upstream TLS.
    /// Fails on unusable TLS files, a malformed upstream address or a duplicate name.
    pub fn new(
        settings: PgDoorSettings,
        engine: Arc<Engine>,
        targets: Vec<PgTarget>,
    ) -> Result<PgDoor, PgError> {
        let server = tls::server_config(settings.tls.as_ref(), &settings.state_dir)?;
        let maskers = engine.maskers();
        let mut map = HashMap::new();
        for target in targets {
            if let Some(profile) = &target.masking {
                maskers.check(std::slice::from_ref(profile)).map_err(|e| {
                    PgError::Setup(format!(
                        "connection {:?}: masking profile {profile:?}: {e}",
                        target.info.name
                    ))
                })?;
            }
            let conn = Arc::new(UpstreamConn::new(&target)?);
            let name = target.info.name.clone();
            if map
                .insert(
                    name.clone(),
                    Arc::new(TargetRt {
                        target,
                        conn,
                        pool: Pool::new(
                            settings.pool_size,
                            settings.pool_idle,
                            settings.limits.max_server_connections,
                            settings.limits.server_connection_wait,
                        ),
                        catalog: crate::catalog::CatalogCache::new(settings.catalog_refresh),
                    }),
                )
                .is_some()
            {
                return Err(PgError::Setup(format!(
                    "connection {name:?} is configured twice"
                )));
            }
        }
        let limits = Limits {
            max_message_bytes: settings.max_message_bytes,
            message_timeout: Some(settings.limits.message_timeout),
            ..Limits::default()
        };
        let cache = StatementCache::new(settings.statement_cache, settings.sql.clone());
        Ok(PgDoor {
            door: Arc::new(Door {
                settings,
                engine,
                targets: map,
                acceptor: TlsAcceptor::from(server),
                cache,
                cancels: Arc::new(CancelMap::default()),
                limits,
                sessions: Arc::default(),
            }),
        })
    }

    /// A handle that runs commands through this door for the exec API (see
    /// [`crate::PgExec`]). Take it before [`PgDoor::serve`].
    pub fn exec(&self, shutdown: CancellationToken) -> crate::PgExec {
        crate::PgExec::new(self.door.clone(), shutdown)
    }

    /// Accepts clients until `shutdown`, one task per session. On shutdown it stops
    /// accepting, ends every session as PostgreSQL's fast shutdown does (FATAL 57P01 to
    /// the client, the server session terminated, `session.close` audited), and returns
    /// once they have all finished.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), PgError> {
        let sessions = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let door = self.door.clone();
                    sessions.spawn(session::run(
                        door,
                        stream,
                        peer,
                        shutdown.child_token(),
                        None,
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a postgres client failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        sessions.close();
        sessions.wait().await;
        Ok(())
    }
}
