//! The door registry `portcullis serve` starts from: one entry per protocol door, each a
//! function that reads its part of the config, binds its listener and hands back a running
//! door on the shared session engine. A new door is one more entry here, not another block
//! in `serve.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use futures::future::BoxFuture;
use portcullis_config::Config;
use portcullis_pipeline::{Engine, ExecDoor};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::runtime;

/// A door that is serving.
pub struct Started {
    /// Its name in the `listening` line (`postgres`).
    pub name: &'static str,
    pub addr: SocketAddr,
    /// What it offers the exec API and MCP, if anything.
    pub exec: Option<Arc<dyn ExecDoor>>,
    /// Ends once the door has closed every session after `shutdown`.
    pub task: JoinHandle<()>,
}

/// What a door needs to start.
pub struct Setup<'a> {
    pub cfg: &'a Config,
    pub engine: &'a Arc<Engine>,
    pub shutdown: &'a CancellationToken,
}

/// Starts the door if the config enables it (`None`: disabled).
type Start = for<'a> fn(&'a Setup<'a>) -> BoxFuture<'a, anyhow::Result<Option<Started>>>;

/// Every door the binary has, in start order.
const REGISTRY: &[Start] = &[postgres];

/// Starts every enabled door; a door that cannot start stops the gateway from starting.
pub async fn start(cx: &Setup<'_>) -> anyhow::Result<Vec<Started>> {
    let mut started = Vec::new();
    for start in REGISTRY {
        if let Some(door) = start(cx).await? {
            started.push(door);
        }
    }
    Ok(started)
}

fn postgres<'a>(cx: &'a Setup<'a>) -> BoxFuture<'a, anyhow::Result<Option<Started>>> {
    Box::pin(async move {
        if !cx.cfg.postgres.enabled {
            return Ok(None);
        }
        let (settings, targets) = runtime::pg_door(cx.cfg)?;
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding the PostgreSQL door on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let door = portcullis_proxy_postgres::PgDoor::new(settings, cx.engine.clone(), targets)?;
        let exec: Arc<dyn ExecDoor> = Arc::new(door.exec(cx.shutdown.clone()));
        let stop = cx.shutdown.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = door.serve(listener, stop).await {
                tracing::error!(error = %e, "the PostgreSQL door stopped");
            }
        });
        Ok(Some(Started {
            name: "postgres",
            addr,
            exec: Some(exec),
            task,
        }))
    })
}
