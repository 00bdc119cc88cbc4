//! How a held statement's client hears about its hold and ends it (DESIGN.md §7). The
//! session engine requests the review, waits, honours the cancel and consumes the approval;
//! the door supplies the line: a NoticeResponse naming the review, sent through the
//! server-to-client loop (the protocol allows notices at any point), and the door's
//! CancelRequest path, which ends the hold (57014) and leaves the review pending.

use async_trait::async_trait;
use bytes::Bytes;
use portcullis_pipeline::session::{Held, HoldLine};
use tokio::sync::mpsc;

use crate::respond;

/// The session's line to its client while a statement is held.
pub(crate) struct Holder<'a> {
    /// NoticeResponses for the client, written by the server-to-client loop.
    pub(crate) notices: &'a mpsc::Sender<Bytes>,
    /// Notified by a CancelRequest for this session.
    pub(crate) canceled: &'a tokio::sync::Notify,
    /// How many CancelRequests this session has received.
    pub(crate) received: &'a std::sync::atomic::AtomicU64,
}

#[async_trait]
impl HoldLine for Holder<'_> {
    async fn held(&self, held: &Held) {
        let _ = self.notices.send(held_notice(held)).await;
    }

    fn cancel(&self) -> &tokio::sync::Notify {
        self.canceled
    }
}

fn held_notice(held: &Held) -> Bytes {
    let message = format!(
        "portcullis: {}: holding it up to {}s for review {}",
        held.needs,
        held.hold.as_secs(),
        held.review_id,
    );
    let detail = format!("review: {}; status: pending", held.review_id);
    respond::notice(&message, Some(&detail), Some(&held.hint))
}
