//! A small, strict, deterministic CBOR (RFC 8949) encoder and decoder.
//!
//! Only what MIMI content needs: definite lengths, shortest-form heads, map keys sorted
//! by their encoded bytes (RFC 8949 §4.2.1 "core deterministic encoding"), and a bounded
//! recursion depth. Generic data items (extension values) are represented by [`Value`].

use crate::error::Error;
use crate::{MAX_EXTENSION_DEPTH, MAX_SAFE_INTEGER};

const MAJOR_UINT: u8 = 0;
const MAJOR_NINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

/// The encoding of `false`.
pub(crate) const FALSE: u8 = 0xf4;
/// The encoding of `true`.
pub(crate) const TRUE: u8 = 0xf5;
/// The encoding of `null`.
pub(crate) const NULL: u8 = 0xf6;
const UNDEFINED: u8 = 0xf7;
/// The only NaN permitted in MIMI content (half-width quiet NaN).
const CANONICAL_NAN: [u8; 3] = [0xf9, 0x7e, 0x00];

/// A generic CBOR data item, as carried in MIMI content extension values.
///
/// Maps keep their entries in deterministic order after decoding; the encoder sorts
/// them by encoded key bytes, so the order in which a map is built does not matter.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Unsigned integer (major type 0).
    Unsigned(u64),
    /// Negative integer (major type 1) with value `-1 - n`.
    Negative(u64),
    /// Byte string.
    Bytes(Vec<u8>),
    /// UTF-8 text string.
    Text(String),
    /// Array.
    Array(Vec<Value>),
    /// Map, as key/value pairs.
    Map(Vec<(Value, Value)>),
    /// Tagged data item.
    Tag(u64, Box<Value>),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// `undefined`.
    Undefined,
    /// Floating point number, encoded in its shortest exact width
    /// (use is discouraged by the draft).
    Float(f64),
}

impl Value {
    /// Builds an integer value from an `i64`.
    pub fn integer(v: i64) -> Value {
        if v >= 0 {
            Value::Unsigned(v.unsigned_abs())
        } else {
            Value::Negative(v.unsigned_abs() - 1)
        }
    }

    /// Puts every map (at any depth) in deterministic order, the order in which
    /// decoding returns entries, so that built and decoded values compare equal.
    pub fn canonicalize(&mut self) {
        match self {
            Value::Array(items) => items.iter_mut().for_each(Value::canonicalize),
            Value::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    k.canonicalize();
                    v.canonicalize();
                }
                entries.sort_by_cached_key(|(k, _)| {
                    let mut e = Encoder::default();
                    e.value(k);
                    e.finish()
                });
            }
            Value::Tag(_, inner) => inner.canonicalize(),
            _ => {}
        }
    }

    /// Encodes this value deterministically.
    ///
    /// Fails if the value violates the MIMI data model (see [`Value::validate`]).
    pub fn to_cbor(&self) -> Result<Vec<u8>, Error> {
        self.validate(1)?;
        let mut e = Encoder::default();
        e.value(self);
        Ok(e.finish())
    }

    /// Checks the MIMI data model restrictions (draft section 6.2/6.3) for a value whose
    /// outermost container would sit at nesting `level` (the extensions map is level 1).
    pub fn validate(&self, level: usize) -> Result<(), Error> {
        const FIELD: &str = "extension value";
        match self {
            Value::Array(items) => {
                check_level(level)?;
                items.iter().try_for_each(|v| v.validate(level + 1))
            }
            Value::Map(entries) => {
                check_level(level)?;
                let mut keys: Vec<Vec<u8>> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    check_nested_key(k)?;
                    let mut e = Encoder::default();
                    e.value(k);
                    keys.push(e.finish());
                    v.validate(level + 1)?;
                }
                keys.sort();
                if keys.windows(2).any(|w| w[0] == w[1]) {
                    return Err(Error::DuplicateMapKey { field: FIELD });
                }
                Ok(())
            }
            Value::Tag(_, inner) => {
                check_level(level)?;
                inner.validate(level + 1)
            }
            _ => Ok(()),
        }
    }
}

fn check_level(level: usize) -> Result<(), Error> {
    if level > MAX_EXTENSION_DEPTH {
        Err(Error::TooDeep {
            field: "extension value",
            limit: MAX_EXTENSION_DEPTH,
        })
    } else {
        Ok(())
    }
}

fn check_nested_key(k: &Value) -> Result<(), Error> {
    match k {
        Value::Unsigned(n) | Value::Negative(n) if *n <= MAX_SAFE_INTEGER => Ok(()),
        Value::Text(_) | Value::Bytes(_) => Ok(()),
        _ => Err(Error::InvalidMapKey {
            field: "extension value",
        }),
    }
}

/// Deterministic CBOR writer.
#[derive(Default)]
pub(crate) struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }

    fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        if n < 24 {
            self.buf.push(m | n as u8);
        } else if let Ok(b) = u8::try_from(n) {
            self.buf.extend_from_slice(&[m | 24, b]);
        } else if let Ok(s) = u16::try_from(n) {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&s.to_be_bytes());
        } else if let Ok(w) = u32::try_from(n) {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&w.to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    pub(crate) fn uint(&mut self, n: u64) {
        self.head(MAJOR_UINT, n);
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.head(MAJOR_BYTES, b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn text(&mut self, s: &str) {
        self.head(MAJOR_TEXT, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn array(&mut self, len: usize) {
        self.head(MAJOR_ARRAY, len as u64);
    }

    pub(crate) fn map(&mut self, len: usize) {
        self.head(MAJOR_MAP, len as u64);
    }

    pub(crate) fn null(&mut self) {
        self.buf.push(NULL);
    }

    pub(crate) fn bool(&mut self, b: bool) {
        self.buf.push(if b { TRUE } else { FALSE });
    }

    pub(crate) fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn float(&mut self, f: f64) {
        if f.is_nan() {
            self.buf.extend_from_slice(&CANONICAL_NAN);
        } else if let Some(h) = f64_to_f16_exact(f) {
            self.buf.push(0xf9);
            self.buf.extend_from_slice(&h.to_be_bytes());
        } else if f64::from(f as f32) == f {
            self.buf.push(0xfa);
            self.buf
                .extend_from_slice(&(f as f32).to_bits().to_be_bytes());
        } else {
            self.buf.push(0xfb);
            self.buf.extend_from_slice(&f.to_bits().to_be_bytes());
        }
    }

    pub(crate) fn value(&mut self, v: &Value) {
        match v {
            Value::Unsigned(n) => self.head(MAJOR_UINT, *n),
            Value::Negative(n) => self.head(MAJOR_NINT, *n),
            Value::Bytes(b) => self.bytes(b),
            Value::Text(t) => self.text(t),
            Value::Array(items) => {
                self.array(items.len());
                items.iter().for_each(|i| self.value(i));
            }
            Value::Map(entries) => {
                let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = entries
                    .iter()
                    .map(|(k, v)| {
                        let mut ke = Encoder::default();
                        ke.value(k);
                        let mut ve = Encoder::default();
                        ve.value(v);
                        (ke.finish(), ve.finish())
                    })
                    .collect();
                encoded.sort();
                self.map(encoded.len());
                for (k, v) in encoded {
                    self.raw(&k);
                    self.raw(&v);
                }
            }
            Value::Tag(t, inner) => {
                self.head(MAJOR_TAG, *t);
                self.value(inner);
            }
            Value::Bool(b) => self.bool(*b),
            Value::Null => self.null(),
            Value::Undefined => self.buf.push(UNDEFINED),
            Value::Float(f) => self.float(*f),
        }
    }
}

/// Returns the IEEE 754 half-precision bits of `f` if the conversion is exact.
fn f64_to_f16_exact(f: f64) -> Option<u16> {
    let single = f as f32;
    if f64::from(single) != f {
        return None;
    }
    let bits = single.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x7f_ffff;
    if exp == 0xff {
        // Infinity (NaN handled by the caller).
        return if mant == 0 { Some(sign | 0x7c00) } else { None };
    }
    if exp == 0 {
        // Zero, or an f32 subnormal (far below the f16 range).
        return if mant == 0 { Some(sign) } else { None };
    }
    let e = exp - 127;
    if (-14..=15).contains(&e) {
        if mant & 0x1fff != 0 {
            return None;
        }
        return Some(sign | (((e + 15) as u16) << 10) | (mant >> 13) as u16);
    }
    if (-24..-14).contains(&e) {
        let full = mant | 0x80_0000;
        let shift = (-(e + 1)) as u32;
        if full & ((1 << shift) - 1) != 0 {
            return None;
        }
        return Some(sign | (full >> shift) as u16);
    }
    None
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let mant = f64::from(h & 0x3ff);
    let magnitude = match exp {
        0 => mant * 2f64.powi(-24),
        0x1f if mant == 0.0 => f64::INFINITY,
        0x1f => f64::NAN,
        _ => (1.0 + mant / 1024.0) * 2f64.powi(exp - 15),
    };
    sign * magnitude
}

/// A decoded initial byte and argument.
#[derive(Clone, Copy)]
pub(crate) struct Head {
    pub(crate) major: u8,
    pub(crate) ai: u8,
    pub(crate) arg: u64,
    pub(crate) offset: usize,
}

/// Strict CBOR reader over an in-memory buffer.
pub(crate) struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Decoder { data, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn slice(&self, from: usize, to: usize) -> &'a [u8] {
        self.data.get(from..to).unwrap_or(&[])
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub(crate) fn finish(&self) -> Result<(), Error> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(Error::TrailingBytes { count }),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.data.len())
            .ok_or(Error::UnexpectedEnd {
                offset: self.data.len(),
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn peek(&self) -> Result<u8, Error> {
        self.data
            .get(self.pos)
            .copied()
            .ok_or(Error::UnexpectedEnd { offset: self.pos })
    }

    /// Reads an initial byte and its argument, enforcing shortest form and definite length.
    pub(crate) fn head(&mut self) -> Result<Head, Error> {
        let offset = self.pos;
        let ib = self.take(1)?[0];
        let major = ib >> 5;
        let ai = ib & 0x1f;
        let arg = match ai {
            0..=23 => u64::from(ai),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes([self.take(1)?[0], self.take(1)?[0]])),
            26 => {
                let b = self.take(4)?;
                u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            27 => {
                let b = self.take(8)?;
                u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            31 if matches!(major, MAJOR_BYTES..=MAJOR_MAP) => {
                return Err(Error::IndefiniteLength { offset });
            }
            _ => return Err(Error::Malformed { offset }),
        };
        if major != MAJOR_SIMPLE {
            let shortest = match ai {
                24 => arg >= 24,
                25 => arg > 0xff,
                26 => arg > 0xffff,
                27 => arg > 0xffff_ffff,
                _ => true,
            };
            if !shortest {
                return Err(Error::NonDeterministic { offset });
            }
        }
        Ok(Head {
            major,
            ai,
            arg,
            offset,
        })
    }

    fn expect(
        &mut self,
        major: u8,
        field: &'static str,
        expected: &'static str,
    ) -> Result<Head, Error> {
        let save = self.pos;
        let h = self.head()?;
        if h.major != major {
            self.pos = save;
            return Err(Error::UnexpectedType { field, expected });
        }
        Ok(h)
    }

    /// Reads an unsigned integer.
    pub(crate) fn uint(&mut self, field: &'static str) -> Result<u64, Error> {
        Ok(self.expect(MAJOR_UINT, field, "unsigned integer")?.arg)
    }

    fn string_body(
        &mut self,
        len: u64,
        field: &'static str,
        max: usize,
    ) -> Result<&'a [u8], Error> {
        if len > max as u64 {
            return Err(Error::LimitExceeded {
                field,
                limit: max as u64,
                found: len,
            });
        }
        // len <= max <= usize::MAX, and take() checks against the input length
        // before anything is allocated.
        self.take(len as usize)
    }

    /// Reads a byte string of at most `max` octets.
    pub(crate) fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], Error> {
        let h = self.expect(MAJOR_BYTES, field, "byte string")?;
        self.string_body(h.arg, field, max)
    }

    /// Reads a text string of at most `max` octets.
    pub(crate) fn text(&mut self, field: &'static str, max: usize) -> Result<&'a str, Error> {
        let h = self.expect(MAJOR_TEXT, field, "text string")?;
        let raw = self.string_body(h.arg, field, max)?;
        std::str::from_utf8(raw).map_err(|_| Error::InvalidUtf8 { offset: h.offset })
    }

    /// Reads an array header and checks its exact length.
    pub(crate) fn array_exact(
        &mut self,
        field: &'static str,
        expected: usize,
    ) -> Result<(), Error> {
        let h = self.expect(MAJOR_ARRAY, field, "array")?;
        if h.arg != expected as u64 {
            return Err(Error::WrongArrayLength {
                field,
                expected,
                found: h.arg,
            });
        }
        Ok(())
    }

    /// Reads an array header of at most `max` elements.
    pub(crate) fn array(&mut self, field: &'static str, max: usize) -> Result<usize, Error> {
        let h = self.expect(MAJOR_ARRAY, field, "array")?;
        self.bounded_count(h.arg, field, max, 1)
    }

    /// Reads a map header of at most `max` entries.
    pub(crate) fn map(&mut self, field: &'static str, max: usize) -> Result<usize, Error> {
        let h = self.expect(MAJOR_MAP, field, "map")?;
        self.bounded_count(h.arg, field, max, 2)
    }

    /// Checks a declared element count against a limit and the remaining input
    /// (each element needs at least `min_item_len` bytes) before anyone allocates.
    fn bounded_count(
        &self,
        n: u64,
        field: &'static str,
        max: usize,
        min_item_len: u64,
    ) -> Result<usize, Error> {
        if n > max as u64 {
            return Err(Error::LimitExceeded {
                field,
                limit: max as u64,
                found: n,
            });
        }
        if n.saturating_mul(min_item_len) > self.remaining() as u64 {
            return Err(Error::UnexpectedEnd {
                offset: self.data.len(),
            });
        }
        Ok(n as usize)
    }

    /// Consumes a `null` if one is next.
    pub(crate) fn null(&mut self) -> Result<bool, Error> {
        if self.peek()? == NULL {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Reads a boolean.
    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, Error> {
        match self.peek()? {
            FALSE => {
                self.pos += 1;
                Ok(false)
            }
            TRUE => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(Error::UnexpectedType {
                field,
                expected: "boolean",
            }),
        }
    }

    /// Reads any data item; containers at a `level` above [`MAX_EXTENSION_DEPTH`] are rejected.
    pub(crate) fn value(&mut self, level: usize) -> Result<Value, Error> {
        const FIELD: &str = "extension value";
        let h = self.head()?;
        let v = match h.major {
            MAJOR_UINT => Value::Unsigned(h.arg),
            MAJOR_NINT => Value::Negative(h.arg),
            MAJOR_BYTES => Value::Bytes(self.string_body(h.arg, FIELD, usize::MAX)?.to_vec()),
            MAJOR_TEXT => {
                let raw = self.string_body(h.arg, FIELD, usize::MAX)?;
                let s = std::str::from_utf8(raw)
                    .map_err(|_| Error::InvalidUtf8 { offset: h.offset })?;
                Value::Text(s.to_owned())
            }
            MAJOR_ARRAY => {
                check_level(level)?;
                let n = self.bounded_count(h.arg, FIELD, usize::MAX, 1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(level + 1)?);
                }
                Value::Array(items)
            }
            MAJOR_MAP => {
                check_level(level)?;
                let n = self.bounded_count(h.arg, FIELD, usize::MAX, 2)?;
                let mut entries = Vec::with_capacity(n);
                let mut prev: Option<&[u8]> = None;
                for _ in 0..n {
                    let start = self.pos;
                    let k = self.value(level + 1)?;
                    check_nested_key(&k)?;
                    let key_bytes = self.slice(start, self.pos);
                    check_key_order(prev, key_bytes, start, FIELD)?;
                    prev = Some(key_bytes);
                    let v = self.value(level + 1)?;
                    entries.push((k, v));
                }
                Value::Map(entries)
            }
            MAJOR_TAG => {
                check_level(level)?;
                Value::Tag(h.arg, Box::new(self.value(level + 1)?))
            }
            _ => match h.ai {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 => Value::Null,
                23 => Value::Undefined,
                25..=27 => {
                    let f = match h.ai {
                        25 => f16_to_f64(h.arg as u16),
                        26 => f64::from(f32::from_bits(h.arg as u32)),
                        _ => f64::from_bits(h.arg),
                    };
                    // Shortest exact width only; NaN only as 0xf97e00.
                    let mut e = Encoder::default();
                    e.float(f);
                    if e.finish() != self.slice(h.offset, self.pos) {
                        return Err(if f.is_nan() {
                            Error::Malformed { offset: h.offset }
                        } else {
                            Error::NonDeterministic { offset: h.offset }
                        });
                    }
                    Value::Float(f)
                }
                _ => return Err(Error::Malformed { offset: h.offset }),
            },
        };
        Ok(v)
    }
}

/// Enforces strictly increasing encoded map keys (deterministic order, no duplicates).
pub(crate) fn check_key_order(
    prev: Option<&[u8]>,
    key: &[u8],
    offset: usize,
    field: &'static str,
) -> Result<(), Error> {
    match prev {
        Some(p) if p == key => Err(Error::DuplicateMapKey { field }),
        Some(p) if p > key => Err(Error::NonDeterministic { offset }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_round_trip() {
        for (f, hex) in [
            (0.0, "f90000"),
            (-0.0, "f98000"),
            (1.0, "f93c00"),
            (1.5, "f93e00"),
            (65504.0, "f97bff"),
            (5.960464477539063e-8, "f90001"),
            (f64::INFINITY, "f97c00"),
            (100000.0, "fa47c35000"),
            (1.1, "fb3ff199999999999a"),
        ] {
            let mut e = Encoder::default();
            e.float(f);
            let out = e.finish();
            assert_eq!(hex::encode(&out), hex, "{f}");
            let mut d = Decoder::new(&out);
            assert_eq!(d.value(1).unwrap(), Value::Float(f));
        }
    }
}
