//! Length-limited building blocks: opaque bytes, UTF-8 text and vectors, each with its
//! limit in the type, all prefixed with the MLS variable-length integer of RFC 9420 §2.1.2
//! (1, 2 or 4 bytes; the minimal form is required and the 8-byte form is refused).

use std::fmt;
use std::io::{Read, Write};

use tls_codec::{Deserialize, Serialize, Size};

use crate::CodecError;
use crate::error::park;

/// The largest length a variable-length prefix can express (2^30 - 1).
pub const MAX_VARINT: usize = (1 << 30) - 1;

/// Bytes taken by the prefix for a length.
pub(crate) fn varint_len(len: usize) -> usize {
    match len {
        0..=63 => 1,
        64..=16383 => 2,
        _ => 4,
    }
}

/// Bytes taken by a vector whose content is `len` bytes, prefix included.
pub(crate) fn vl_len(len: usize) -> usize {
    varint_len(len) + len
}

pub(crate) fn write_varint<W: Write>(
    len: usize,
    writer: &mut W,
) -> Result<usize, tls_codec::Error> {
    if len > MAX_VARINT {
        return Err(tls_codec::Error::InvalidVectorLength);
    }
    // Invariant: len <= 2^30 - 1 fits in u32.
    let v = len as u32;
    // `write_all`, not `write`: a writer may accept fewer bytes than offered.
    let written = match varint_len(len) {
        1 => {
            writer.write_all(&[v as u8])?;
            1
        }
        2 => {
            writer.write_all(&((v as u16) | 0x4000).to_be_bytes())?;
            2
        }
        _ => {
            writer.write_all(&(v | 0x8000_0000).to_be_bytes())?;
            4
        }
    };
    Ok(written)
}

/// Rule CODEC-1 (docs/protocol-coverage.md).
pub(crate) fn read_varint<R: Read>(reader: &mut R) -> Result<usize, tls_codec::Error> {
    let mut first = [0u8; 1];
    reader.read_exact(&mut first)?;
    let prefix = first[0] >> 6;
    let mut value = usize::from(first[0] & 0x3f);
    let len = match prefix {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => return Err(tls_codec::Error::InvalidVectorLength),
    };
    for _ in 1..len {
        let mut next = [0u8; 1];
        reader.read_exact(&mut next)?;
        value = (value << 8) | usize::from(next[0]);
    }
    if varint_len(value) != len {
        return Err(tls_codec::Error::InvalidVectorLength);
    }
    Ok(value)
}

pub(crate) fn write_vl_bytes<W: Write>(
    bytes: &[u8],
    writer: &mut W,
) -> Result<usize, tls_codec::Error> {
    let n = write_varint(bytes.len(), writer)?;
    writer.write_all(bytes)?;
    Ok(n + bytes.len())
}

/// Read a length-prefixed byte string of at most `max` bytes. The limit is checked before
/// anything is allocated.
///
/// Rule CODEC-4 (docs/protocol-coverage.md).
pub(crate) fn read_vl_bytes<R: Read>(
    reader: &mut R,
    max: usize,
) -> Result<Vec<u8>, tls_codec::Error> {
    let len = read_varint(reader)?;
    if len > max {
        return Err(park(CodecError::TooLong { len, max }));
    }
    read_exact_vec(reader, len)
}

/// Read exactly `len` bytes. The caller has checked `len` against its limit; memory grows
/// only with the bytes actually read.
pub(crate) fn read_exact_vec<R: Read>(
    reader: &mut R,
    len: usize,
) -> Result<Vec<u8>, tls_codec::Error> {
    let mut out = Vec::new();
    reader.take(len as u64).read_to_end(&mut out)?;
    if out.len() != len {
        return Err(tls_codec::Error::EndOfStream);
    }
    Ok(out)
}

/// Opaque bytes of at most `MAX` bytes (`opaque field<V>`).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Opaque<const MAX: usize>(Vec<u8>);

impl<const MAX: usize> Opaque<MAX> {
    /// Wrap bytes, refusing more than `MAX`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, CodecError> {
        let bytes = bytes.into();
        if bytes.len() > MAX {
            return Err(CodecError::TooLong {
                len: bytes.len(),
                max: MAX,
            });
        }
        Ok(Opaque(bytes))
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Take the bytes out.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<const MAX: usize> fmt::Debug for Opaque<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= 32 {
            write!(f, "0x")?;
            for b in &self.0 {
                write!(f, "{b:02x}")?;
            }
            Ok(())
        } else {
            write!(f, "<{} bytes>", self.0.len())
        }
    }
}

impl<const MAX: usize> AsRef<[u8]> for Opaque<MAX> {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl<const MAX: usize> Size for Opaque<MAX> {
    fn tls_serialized_len(&self) -> usize {
        vl_len(self.0.len())
    }
}

impl<const MAX: usize> Serialize for Opaque<MAX> {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        write_vl_bytes(&self.0, writer)
    }
}

impl<const MAX: usize> Deserialize for Opaque<MAX> {
    fn tls_deserialize<R: Read>(bytes: &mut R) -> Result<Self, tls_codec::Error> {
        read_vl_bytes(bytes, MAX).map(Opaque)
    }
}

/// UTF-8 text of at most `MAX` bytes, encoded as `opaque field<V>`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    /// Wrap a string, refusing more than `MAX` bytes.
    pub fn new(text: impl Into<String>) -> Result<Self, CodecError> {
        let text = text.into();
        if text.len() > MAX {
            return Err(CodecError::TooLong {
                len: text.len(),
                max: MAX,
            });
        }
        Ok(Text(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<const MAX: usize> fmt::Debug for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MAX: usize> fmt::Display for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> Size for Text<MAX> {
    fn tls_serialized_len(&self) -> usize {
        vl_len(self.0.len())
    }
}

impl<const MAX: usize> Serialize for Text<MAX> {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        write_vl_bytes(self.0.as_bytes(), writer)
    }
}

impl<const MAX: usize> Deserialize for Text<MAX> {
    fn tls_deserialize<R: Read>(bytes: &mut R) -> Result<Self, tls_codec::Error> {
        let raw = read_vl_bytes(bytes, MAX)?;
        String::from_utf8(raw)
            .map(Text)
            .map_err(|_| park(CodecError::InvalidUtf8))
    }
}

/// A vector of at most `MAX` items (`T field<V>`): a byte-length prefix, then the items.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BoundedVec<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> Default for BoundedVec<T, MAX> {
    fn default() -> Self {
        BoundedVec(Vec::new())
    }
}

impl<T, const MAX: usize> BoundedVec<T, MAX> {
    /// Wrap items, refusing more than `MAX`.
    pub fn new(items: Vec<T>) -> Result<Self, CodecError> {
        if items.len() > MAX {
            return Err(CodecError::TooLong {
                len: items.len(),
                max: MAX,
            });
        }
        Ok(BoundedVec(items))
    }

    /// The items.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// Take the items out.
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterate over the items.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<T: fmt::Debug, const MAX: usize> fmt::Debug for BoundedVec<T, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<'a, T, const MAX: usize> IntoIterator for &'a BoundedVec<T, MAX> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: Size, const MAX: usize> Size for BoundedVec<T, MAX> {
    fn tls_serialized_len(&self) -> usize {
        vl_len(self.0.iter().map(Size::tls_serialized_len).sum())
    }
}

impl<T: Serialize + Size, const MAX: usize> Serialize for BoundedVec<T, MAX> {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        let content: usize = self.0.iter().map(Size::tls_serialized_len).sum();
        let mut written = write_varint(content, writer)?;
        for item in &self.0 {
            written += item.tls_serialize(writer)?;
        }
        Ok(written)
    }
}

impl<T: Deserialize, const MAX: usize> Deserialize for BoundedVec<T, MAX> {
    fn tls_deserialize<R: Read>(bytes: &mut R) -> Result<Self, tls_codec::Error> {
        let len = read_varint(bytes)?;
        let mut sub = bytes.take(len as u64);
        let mut items = Vec::new();
        while sub.limit() > 0 {
            if items.len() == MAX {
                return Err(park(CodecError::TooLong {
                    len: items.len() + 1,
                    max: MAX,
                }));
            }
            let before = sub.limit();
            items.push(T::tls_deserialize(&mut sub)?);
            if sub.limit() == before {
                return Err(park(CodecError::Malformed(
                    "vector item of zero length".into(),
                )));
            }
        }
        Ok(BoundedVec(items))
    }
}
