//! Masking what the server says outside result rows: the fields of ErrorResponse and
//! NoticeResponse, and NOTIFY payloads. A value leaves through these as easily as through a
//! row (`SELECT email::int` answers `invalid input syntax for type integer: "<email>"`, a NOT
//! NULL violation quotes the whole failing row in DETAIL, a function can RAISE a value), so
//! every free-text field passes the same masker as the rows of the statement it belongs to.
//!
//! Fields: <https://www.postgresql.org/docs/current/protocol-error-fields.html>.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use portcullis_masking::{Counts, Masker};
use portcullis_pgwire::{Frame, WireError, encode_backend, parse_notification, parse_report};

/// Fields that never carry data: severity (localized and not), SQLSTATE, the server's source
/// file, line and routine, and the two cursor positions (numbers). Everything else — message,
/// detail, hint, context, internal query, and the schema/table/column/type/constraint names —
/// is masked.
const VERBATIM: &[u8] = b"SVCFLRPp";

/// Free-text fields that can quote a value: message, detail, hint, context, internal query.
const FREE_TEXT: &[u8] = b"MDHWq";

/// What replaces a free-text field of a statement that reads a sensitive column.
const WITHHELD: &str = "(withheld by portcullis: the statement reads a sensitive column, and \
     this text may quote a value made of it; run it without the sensitive column to see it)";

/// The ErrorResponse or NoticeResponse to send instead of `frame`, or `None` when nothing
/// in it is sensitive. `strict`: the statement reads a sensitive column, so a value made
/// of one can be in the text in any shape (`reverse(email)::int` quotes the reversed
/// address): the message keeps only what precedes its first quote or colon, and the other
/// free-text fields are withheld.
pub(crate) fn mask_report(
    masker: &Masker,
    frame: &Frame,
    strict: bool,
    counts: &mut Counts,
) -> Result<Option<Bytes>, WireError> {
    let report = parse_report(frame)?;
    let mut changed = false;
    let fields: Vec<(u8, Cow<'_, [u8]>)> = report
        .fields
        .iter()
        .map(|(t, v)| {
            let value = if VERBATIM.contains(t) {
                Cow::Borrowed(v.as_ref())
            } else if strict && FREE_TEXT.contains(t) {
                Cow::Owned(withheld(*t, v).into_bytes())
            } else {
                mask_bytes(masker, v, counts)
            };
            changed |= matches!(value, Cow::Owned(_));
            (*t, value)
        })
        .collect();
    if !changed {
        return Ok(None);
    }
    let borrowed: Vec<(u8, &[u8])> = fields.iter().map(|(t, v)| (*t, v.as_ref())).collect();
    let mut buf = BytesMut::with_capacity(frame.wire_len());
    encode_backend::report_fields(&mut buf, frame.tag(), &borrowed)?;
    Ok(Some(buf.freeze()))
}

/// A free-text field of a strict report: the message's words before any quoted or
/// appended value, else the fixed text.
fn withheld(field: u8, value: &[u8]) -> String {
    if field != b'M' {
        return WITHHELD.to_owned();
    }
    let text = String::from_utf8_lossy(value);
    let cut = text
        .find(['"', ':', '(', '\'', '«', '„', '「'])
        .unwrap_or(text.len());
    let head = text[..cut].trim_end();
    // Only the words of the message itself, never a value without quotes around it.
    if head.is_empty() || cut == text.len() {
        return WITHHELD.to_owned();
    }
    format!("{head}: {WITHHELD}")
}

/// The NotificationResponse to send instead of `frame`, or `None` when its channel and
/// payload hold nothing sensitive. Payloads come from other sessions (a trigger that NOTIFYs
/// a changed row, say), so they are masked like any value read from the database.
pub(crate) fn mask_notification(
    masker: &Masker,
    frame: &Frame,
    counts: &mut Counts,
) -> Result<Option<Bytes>, WireError> {
    let n = parse_notification(frame)?;
    let channel = mask_bytes(masker, &n.channel, counts);
    let payload = mask_bytes(masker, &n.payload, counts);
    if matches!((&channel, &payload), (Cow::Borrowed(_), Cow::Borrowed(_))) {
        return Ok(None);
    }
    let mut buf = BytesMut::with_capacity(frame.wire_len());
    encode_backend::notification(&mut buf, n.pid, &channel, &payload)?;
    Ok(Some(buf.freeze()))
}

/// Masks one text field. Text that is not UTF-8 (another client_encoding) is read lossily;
/// when something sensitive is found in it, the masked lossy text replaces it: garbled where
/// it could not be read, but never in the clear. NUL bytes cannot occur in a field.
fn mask_bytes<'a>(masker: &Masker, value: &'a [u8], counts: &mut Counts) -> Cow<'a, [u8]> {
    match std::str::from_utf8(value) {
        Ok(text) => match masker.mask_text(text, counts) {
            Cow::Borrowed(_) => Cow::Borrowed(value),
            Cow::Owned(masked) => Cow::Owned(masked.into_bytes()),
        },
        Err(_) => {
            let lossy = String::from_utf8_lossy(value);
            match masker.mask_text(&lossy, counts) {
                Cow::Borrowed(_) => Cow::Borrowed(value),
                Cow::Owned(masked) => Cow::Owned(masked.into_bytes()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_masking::ProfileSpec;
    use portcullis_pgwire::{Severity, encode_backend::Report, tag};

    fn masker() -> Masker {
        Masker::new(&[&ProfileSpec::builtin_default()], None).unwrap()
    }

    fn frame(bytes: &[u8]) -> Frame {
        Frame::new(bytes[0], &bytes[5..]).unwrap()
    }

    fn error(message: &str, detail: Option<&str>) -> Frame {
        let mut buf = BytesMut::new();
        encode_backend::error_response(
            &mut buf,
            &Report {
                severity: Severity::Error,
                code: "22P02",
                message,
                detail,
                hint: None,
            },
        );
        frame(&buf)
    }

    #[test]
    fn values_in_error_fields_are_masked_and_codes_kept() {
        let f = error(
            "invalid input syntax for type integer: \"ada@example.com 4111 1111 1111 1111\"",
            Some("Failing row contains (1, ada@example.com)."),
        );
        let mut counts = Counts::default();
        let out = mask_report(&masker(), &f, false, &mut counts)
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("ada@example.com"), "{text}");
        assert!(!text.contains("4111 1111 1111 1111"), "{text}");
        let fields = parse_report(&frame(&out)).unwrap();
        assert_eq!(fields.code(), Some(&b"22P02"[..]));
        assert_eq!(fields.severity(), Some(Severity::Error));
        assert!(!counts.is_empty());
    }

    #[test]
    fn clean_reports_pass_unchanged() {
        let f = error("division by zero", None);
        assert!(
            mask_report(&masker(), &f, false, &mut Counts::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn text_in_another_encoding_is_masked_lossily() {
        let mut buf = BytesMut::new();
        let value = b"caf\xe9 ada@example.com".as_slice();
        encode_backend::report_fields(&mut buf, tag::NOTICE_RESPONSE, &[(b'M', value)]).unwrap();
        let out = mask_report(&masker(), &frame(&buf), false, &mut Counts::default())
            .unwrap()
            .unwrap();
        assert!(!String::from_utf8_lossy(&out).contains("ada@example.com"));
    }

    #[test]
    fn notification_payloads_are_masked() {
        let mut buf = BytesMut::new();
        encode_backend::notification(&mut buf, 42, b"orders", b"new card 4111111111111111")
            .unwrap();
        let out = mask_notification(&masker(), &frame(&buf), &mut Counts::default())
            .unwrap()
            .unwrap();
        let n = parse_notification(&frame(&out)).unwrap();
        assert_eq!(n.pid, 42);
        assert_eq!(&n.channel[..], b"orders");
        assert!(!String::from_utf8_lossy(&n.payload).contains("4111111111111111"));
    }
}
