//! A `serde::Serializer` that turns serialization of a parse tree into a visit of every node.
//!
//! libpg_query's Rust types derive `Serialize` for every node, and serialization reaches every
//! field by construction, so a visit built on it cannot skip a node kind that a later
//! libpg_query adds. This adapter forwards structs, fields, strings, booleans and 32-bit
//! integers (enum values) to a [`Hooks`] implementation and discards everything else, so
//! nothing is allocated. [`crate::walk`] and [`crate::restrict`] are its two users.

use serde::Serialize;
use serde::ser::{
    SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// What a visit reports, in serialization order (a struct's fields in declaration order).
pub(crate) trait Hooks {
    /// A struct (a node, or a struct-like enum variant) starts.
    fn on_struct_start(&mut self, name: &'static str);
    /// The next value is the field `key` of the innermost struct.
    fn on_field(&mut self, key: &'static str);
    /// The innermost struct ends.
    fn on_struct_end(&mut self);
    fn on_str(&mut self, _value: &str) {}
    fn on_bool(&mut self, _value: bool) {}
    /// 32-bit integers are enum values (kinds, operators) and `AConst` integers.
    fn on_i32(&mut self, _value: i32) {}
}

/// Visits `node` with `hooks` and returns them.
pub(crate) fn visit<H: Hooks>(node: &impl Serialize, hooks: H) -> Result<H, VisitError> {
    let mut visitor = Visitor(hooks);
    node.serialize(&mut visitor)?;
    Ok(visitor.0)
}

/// The error type the serializer needs; a visit itself never produces one.
#[derive(Debug, thiserror::Error)]
#[error("parse tree visit failed: {0}")]
pub(crate) struct VisitError(String);

impl serde::ser::Error for VisitError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// The serializer: a local type, so that it can implement serde's traits for any hooks.
pub(crate) struct Visitor<H>(H);

type Done = Result<(), VisitError>;

impl<H: Hooks> Serializer for &mut Visitor<H> {
    type Ok = ();
    type Error = VisitError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, v: bool) -> Done {
        self.0.on_bool(v);
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> Done {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> Done {
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Done {
        self.0.on_i32(v);
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> Done {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> Done {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> Done {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> Done {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> Done {
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> Done {
        Ok(())
    }
    fn serialize_f64(self, _: f64) -> Done {
        Ok(())
    }
    fn serialize_char(self, _: char) -> Done {
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Done {
        self.0.on_str(v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Done {
        Ok(())
    }
    fn serialize_none(self) -> Done {
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Done {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Done {
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Done {
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, VisitError> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, VisitError> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, VisitError> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, VisitError> {
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, VisitError> {
        Ok(self)
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Self, VisitError> {
        self.0.on_struct_start(name);
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, VisitError> {
        self.0.on_struct_start(variant);
        Ok(self)
    }
}

impl<H: Hooks> SerializeSeq for &mut Visitor<H> {
    type Ok = ();
    type Error = VisitError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl<H: Hooks> SerializeTuple for &mut Visitor<H> {
    type Ok = ();
    type Error = VisitError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl<H: Hooks> SerializeTupleStruct for &mut Visitor<H> {
    type Ok = ();
    type Error = VisitError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl<H: Hooks> SerializeTupleVariant for &mut Visitor<H> {
    type Ok = ();
    type Error = VisitError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

/// Map keys are not visited: the parse tree has no maps, and a key must not be mistaken for
/// a name in the node around it.
impl<H: Hooks> SerializeMap for &mut Visitor<H> {
    type Ok = ();
    type Error = VisitError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, _: &T) -> Done {
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl<H: Hooks> SerializeStruct for &mut Visitor<H> {
    type Ok = ();
    type Error = VisitError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Done {
        self.0.on_field(key);
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        self.0.on_struct_end();
        Ok(())
    }
}

impl<H: Hooks> SerializeStructVariant for &mut Visitor<H> {
    type Ok = ();
    type Error = VisitError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Done {
        self.0.on_field(key);
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        self.0.on_struct_end();
        Ok(())
    }
}
