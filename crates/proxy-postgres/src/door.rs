//! The door itself: shared state built once at start-up, and the accept loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use portcullis_pgwire::Limits;
use portcullis_pipeline::Pipeline;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache::StatementCache;
use crate::cancel::CancelMap;
use crate::error::PgError;
use crate::mask::Maskers;
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
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) targets: HashMap<String, Arc<TargetRt>>,
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) cache: StatementCache,
    pub(crate) cancels: Arc<CancelMap>,
    pub(crate) limits: Limits,
    pub(crate) maskers: Maskers,
    /// Open sessions by principal and by connection, for the session limits.
    pub(crate) sessions: Arc<crate::limits::Sessions>,
    /// Where statements that need approval are held; `None`: they are refused.
    pub(crate) reviews: Option<portcullis_reviews::Reviews>,
    /// Where sessions are recorded; `None`: not recorded.
    pub(crate) recordings: Option<portcullis_recording::Recordings>,
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
        pipeline: Arc<Pipeline>,
        targets: Vec<PgTarget>,
    ) -> Result<PgDoor, PgError> {
        let server = tls::server_config(settings.tls.as_ref(), &settings.state_dir)?;
        let maskers = Maskers::new(settings.masking.clone());
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
                pipeline,
                targets: map,
                acceptor: TlsAcceptor::from(server),
                cache,
                cancels: Arc::new(CancelMap::default()),
                limits,
                maskers,
                sessions: Arc::default(),
                reviews: None,
                recordings: None,
            }),
        })
    }

    /// Holds statements whose decision is RequireApproval with `reviews` (without it, they
    /// are refused). Call before [`PgDoor::serve`].
    pub fn with_reviews(mut self, reviews: portcullis_reviews::Reviews) -> PgDoor {
        if let Some(door) = Arc::get_mut(&mut self.door) {
            door.reviews = Some(reviews);
        }
        self
    }

    /// Records every session with `recordings` (a session whose recording cannot be opened
    /// is refused). Call before [`PgDoor::serve`].
    pub fn with_recordings(mut self, recordings: portcullis_recording::Recordings) -> PgDoor {
        if let Some(door) = Arc::get_mut(&mut self.door) {
            door.recordings = Some(recordings);
        }
        self
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
