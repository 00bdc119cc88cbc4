//! Result rows: RowDescription and DataRow, read and (for DataRow) written back. These are
//! what masking rewrites; everything else about a result is relayed as it came.

use bytes::{BufMut, Bytes, BytesMut};

use crate::WireError;
use crate::body::Body;
use crate::frame::{Frame, tag};

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    pub name: String,
    pub table_oid: u32,
    pub column: i16,
    pub type_oid: u32,
    pub type_size: i16,
    pub type_modifier: i32,
    /// 0 text, 1 binary; 0 also in a statement's description, where the format is not yet
    /// known (it is chosen at Bind).
    pub format: i16,
}

/// Reads a RowDescription ('T').
pub fn parse_row_description(frame: &Frame) -> Result<Vec<FieldDescription>, WireError> {
    let mut b = Body::new(frame.body(), "RowDescription");
    let n = b.count16()?;
    // Each field takes at least 19 bytes (an empty name plus 18 bytes of numbers).
    let mut fields = Vec::with_capacity(b.capacity(n, 19));
    for _ in 0..n {
        let name = String::from_utf8_lossy(&b.cstr()?).into_owned();
        fields.push(FieldDescription {
            name,
            table_oid: b.i32()? as u32,
            column: b.i16()?,
            type_oid: b.i32()? as u32,
            type_size: b.i16()?,
            type_modifier: b.i32()?,
            format: b.i16()?,
        });
    }
    b.finish()?;
    Ok(fields)
}

/// The values of a DataRow ('D'), `None` for NULL; the slices share the frame's buffer.
pub fn parse_data_row(frame: &Frame) -> Result<Vec<Option<Bytes>>, WireError> {
    let mut b = Body::new(frame.body(), "DataRow");
    let n = b.count16()?;
    // A value takes at least its 4-byte length.
    let mut values = Vec::with_capacity(b.capacity(n, 4));
    for _ in 0..n {
        values.push(b.nullable()?);
    }
    b.finish()?;
    Ok(values)
}

/// Encodes a DataRow message from its values (`None`: NULL).
pub fn encode_data_row<'a>(
    values: impl ExactSizeIterator<Item = Option<&'a [u8]>>,
) -> Result<Bytes, WireError> {
    let count = i16::try_from(values.len()).map_err(|_| WireError::Encode {
        what: "DataRow",
        problem: "more than 32767 values",
    })?;
    let mut buf = BytesMut::new();
    crate::encode::put_message(&mut buf, tag::DATA_ROW, |buf| {
        buf.put_i16(count);
        for v in values {
            match v {
                None => buf.put_i32(-1),
                Some(v) => {
                    let len = i32::try_from(v.len()).map_err(|_| WireError::Encode {
                        what: "DataRow",
                        problem: "a value longer than 2 GiB",
                    })?;
                    buf.put_i32(len);
                    buf.put_slice(v);
                }
            }
        }
        Ok(())
    })?;
    Ok(buf.freeze())
}
