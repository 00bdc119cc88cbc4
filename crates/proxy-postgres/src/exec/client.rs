//! The exec door's client: a minimal PostgreSQL frontend over an in-memory pipe into the
//! door. It speaks only what one command needs: start-up with the caller's token as the
//! password, then a simple Query, or Parse/Bind/Describe/Execute/Sync when the command has
//! bound parameters (sent, and answered, in text format), and a CancelRequest to end a hold.

use bytes::{Bytes, BytesMut};
use portcullis_pgwire::{
    Authentication, Backend, ErrorFields, Frame, FrameReader, Limits, Side, encode_frontend,
    parse_backend, parse_data_row, parse_row_description, tag,
};
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

use crate::startup::SESSION_ID_PARAMETER;

/// Why a command got no answer from the door: what the door said, or that the pipe broke.
#[derive(Debug)]
pub(super) enum Failure {
    Door(ErrorFields),
    Closed,
}

impl From<portcullis_pgwire::WireError> for Failure {
    fn from(_: portcullis_pgwire::WireError) -> Self {
        Failure::Closed
    }
}

impl From<std::io::Error> for Failure {
    fn from(_: std::io::Error) -> Self {
        Failure::Closed
    }
}

/// What one command produced: the last statement's result, and the first error.
#[derive(Debug, Default)]
pub(super) struct Answer {
    pub(super) columns: Vec<String>,
    pub(super) rows: Vec<Vec<Option<String>>>,
    pub(super) row_count: u64,
    pub(super) truncated: bool,
    pub(super) error: Option<ErrorFields>,
    /// The hold the session told of (as the engine noted it, typed).
    pub(super) held: Option<portcullis_pipeline::session::Held>,
    /// The refusal the session told of (typed), when one ended the command.
    pub(super) refusal: Option<portcullis_pipeline::Refusal>,
}

/// The result size the caller accepts; rows past it are counted, not kept.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limit {
    pub(super) rows: usize,
    pub(super) bytes: usize,
}

pub(super) struct Client {
    reader: FrameReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
    /// The door's session id (`portcullis_session_id`).
    pub(super) session_id: Option<String>,
    key: Option<(i32, Bytes)>,
}

impl Client {
    /// Start-up as `exec` on `database` (the connection name), presenting `token`.
    pub(super) async fn connect(
        pipe: DuplexStream,
        database: &str,
        token: &[u8],
    ) -> Result<Self, Failure> {
        let (r, w) = tokio::io::split(pipe);
        let mut c = Client {
            reader: FrameReader::new(r, Side::Backend, Limits::default()),
            writer: w,
            session_id: None,
            key: None,
        };
        let mut buf = BytesMut::new();
        encode_frontend::startup(
            &mut buf,
            [
                ("user", "exec"),
                ("database", database),
                ("application_name", "portcullis-exec"),
            ],
        )?;
        c.send(buf).await?;
        loop {
            match parse_backend(&c.frame().await?)? {
                Backend::Authentication(Authentication::CleartextPassword) => {
                    let mut buf = BytesMut::new();
                    encode_frontend::password(&mut buf, token)?;
                    c.send(buf).await?;
                }
                Backend::Authentication(Authentication::Ok) => {}
                // The door asks for nothing else.
                Backend::Authentication(_) => return Err(Failure::Closed),
                Backend::ParameterStatus { name, value } if name == SESSION_ID_PARAMETER => {
                    c.session_id = Some(value);
                }
                Backend::BackendKeyData { pid, secret } => c.key = Some((pid, secret)),
                Backend::ReadyForQuery(_) => return Ok(c),
                Backend::ErrorResponse(f) => return Err(Failure::Door(f)),
                _ => {}
            }
        }
    }

    /// Runs `input` (with `params` bound, if any) and reads the answer through the next
    /// ReadyForQuery. When the door holds the command and `cancel` is given, the hold is
    /// ended at once through a CancelRequest on a new pipe from `cancel`.
    pub(super) async fn run(
        &mut self,
        input: &str,
        params: &[Option<String>],
        limit: Limit,
        cancel: Option<&(dyn Fn() -> DuplexStream + Send + Sync)>,
        noted: &portcullis_pipeline::Receipts,
    ) -> Result<Answer, Failure> {
        let mut buf = BytesMut::new();
        if params.is_empty() {
            encode_frontend::query(&mut buf, input)?;
        } else {
            let values: Vec<Option<&[u8]>> = params
                .iter()
                .map(|p| p.as_deref().map(str::as_bytes))
                .collect();
            encode_frontend::parse_unnamed(&mut buf, input)?;
            encode_frontend::bind_text(&mut buf, &values)?;
            encode_frontend::describe_portal(&mut buf);
            encode_frontend::execute(&mut buf);
            encode_frontend::sync(&mut buf);
        }
        self.send(buf).await?;

        let mut a = Answer::default();
        // Whether the statement being answered has described its rows.
        let (mut described, mut bytes) = (false, 0usize);
        loop {
            let frame = match self.frame().await {
                Ok(frame) => frame,
                // The door ended the session after saying why (a FATAL): that is the answer.
                Err(Failure::Closed) => {
                    return Err(a.error.take().map_or(Failure::Closed, Failure::Door));
                }
                Err(e) => return Err(e),
            };
            match frame.tag() {
                tag::ROW_DESCRIPTION => {
                    a.columns = parse_row_description(&frame)?
                        .into_iter()
                        .map(|f| f.name)
                        .collect();
                    (a.rows, a.truncated, bytes, described) = (Vec::new(), false, 0, true);
                }
                tag::DATA_ROW => {
                    let values: Vec<Option<String>> = parse_data_row(&frame)?
                        .into_iter()
                        .map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
                        .collect();
                    keep(&mut a, &mut bytes, values, limit);
                }
                tag::COPY_DATA => {
                    let line = frame.body();
                    let line = line.strip_suffix(b"\n").unwrap_or(&line);
                    let values = vec![Some(String::from_utf8_lossy(line).into_owned())];
                    keep(&mut a, &mut bytes, values, limit);
                }
                _ => match parse_backend(&frame)? {
                    Backend::CommandComplete { tag } => {
                        if !described {
                            (a.columns, a.rows, a.truncated, bytes) =
                                (Vec::new(), Vec::new(), false, 0);
                        }
                        a.row_count = crate::relay::backend::counted(&tag).unwrap_or(0);
                        described = false;
                    }
                    Backend::CopyOutResponse { .. } => {
                        (a.columns, a.rows, a.truncated, bytes) =
                            (vec!["copy".into()], Vec::new(), false, 0);
                        described = true;
                    }
                    Backend::CopyInResponse { .. } => {
                        let mut buf = BytesMut::new();
                        encode_frontend::copy_fail(
                            &mut buf,
                            "the exec API sends no COPY data: use INSERT, or COPY FROM a file the server reads",
                        )?;
                        self.send(buf).await?;
                    }
                    Backend::ErrorResponse(f) => {
                        a.error.get_or_insert(f);
                    }
                    Backend::NoticeResponse(_) => {
                        // The engine notes a hold before the door tells of it.
                        if let Some(held) = noted.take_held() {
                            if let Some(open) = cancel {
                                self.cancel(open()).await;
                            }
                            a.held = Some(held);
                        }
                    }
                    Backend::ReadyForQuery(_) => return Ok(a),
                    _ => {}
                },
            }
        }
    }

    /// Ends the session politely.
    pub(super) async fn close(mut self) {
        let mut buf = BytesMut::new();
        encode_frontend::terminate(&mut buf);
        let _ = self.send(buf).await;
        let _ = self.writer.shutdown().await;
    }

    /// Sends a CancelRequest for this session on `pipe` (a new connection to the door).
    async fn cancel(&self, mut pipe: DuplexStream) {
        let Some((pid, secret)) = &self.key else {
            return;
        };
        let mut buf = BytesMut::new();
        if encode_frontend::cancel_request(&mut buf, *pid, secret).is_ok()
            && let Err(e) = pipe.write_all(&buf).await
        {
            tracing::warn!(error = %e, "could not cancel a held exec command");
        }
        let _ = pipe.shutdown().await;
    }

    async fn frame(&mut self) -> Result<Frame, Failure> {
        self.reader.next_frame().await?.ok_or(Failure::Closed)
    }

    async fn send(&mut self, buf: BytesMut) -> Result<(), Failure> {
        self.writer.write_all(&buf).await?;
        self.writer.flush().await?;
        Ok(())
    }
}

/// Keeps a row while the answer is within `limit`; counts it as truncated otherwise.
fn keep(a: &mut Answer, bytes: &mut usize, values: Vec<Option<String>>, limit: Limit) {
    let size: usize = values.iter().flatten().map(String::len).sum();
    if a.rows.len() < limit.rows && *bytes + size <= limit.bytes {
        *bytes += size;
        a.rows.push(values);
    } else {
        a.truncated = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_past_the_limit_are_counted_not_kept() {
        let mut a = Answer::default();
        let mut bytes = 0;
        let limit = Limit { rows: 2, bytes: 10 };
        for v in ["abcd", "efgh", "ij"] {
            keep(&mut a, &mut bytes, vec![Some(v.into())], limit);
        }
        assert_eq!(a.rows.len(), 2);
        assert!(a.truncated);
        let mut a = Answer::default();
        let mut bytes = 0;
        keep(&mut a, &mut bytes, vec![Some("x".repeat(11))], limit);
        assert!(a.rows.is_empty() && a.truncated);
    }
}
