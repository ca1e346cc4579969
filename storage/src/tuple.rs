//! Tuple encoding of keys, in FoundationDB's layout, so that prefixes order and nest.
//!
//! A key is a tuple of [`Element`]s packed into bytes. Each element starts with a type
//! code, byte and UTF-8 strings are terminated, and integers are encoded so that:
//!
//! - packed tuples sort exactly like the tuples themselves (element by element, a shorter
//!   tuple before the longer ones it starts), so related records sit next to each other;
//! - the [`range`] of a packed tuple holds exactly the tuples that extend it element by
//!   element: `("s", "alice")` is not in the range of `("s", "al")`, so one user's
//!   records never pick up another user's.
//!
//! The usual way to build a key is the [`Key`] builder:
//!
//! ```
//! use galilean_storage::tuple::{self, Element, Key};
//!
//! let key = Key::new().str("s").str("alice").str("nb1").build();
//! assert_eq!(
//!     tuple::unpack(&key).unwrap(),
//!     vec![Element::from("s"), Element::from("alice"), Element::from("nb1")],
//! );
//!
//! // every server of alice, and none of "al"'s or "alice2"'s
//! let (begin, end) = Key::new().str("s").str("alice").range();
//! assert!(begin <= key && key < end);
//! ```
//!
//! The encodings are FoundationDB's (type codes 0x01 bytes, 0x02 string, 0x0b–0x1d
//! integer), so keys written here read the same in FDB's tuple layer. Only these types are
//! supported.

/// Type code of a byte string.
const BYTES: u8 = 0x01;
/// Type code of a UTF-8 string.
const STRING: u8 = 0x02;
/// Type code of a negative integer whose magnitude needs more than 8 bytes.
const NEG_BIG_INT: u8 = 0x0b;
/// Type code of zero. `ZERO - n` and `ZERO + n` are the negative and positive integers of
/// `n` (1 to 8) bytes.
const ZERO: u8 = 0x14;
/// Type code of a positive integer that needs more than 8 bytes.
const POS_BIG_INT: u8 = 0x1d;
/// Terminator of byte strings; escaped as `0x00 0xff` inside them.
const TERMINATOR: u8 = 0x00;
const ESCAPE: u8 = 0xff;

/// One element of a key tuple.
///
/// The derived order (bytes before strings before integers, then by value) is the order
/// of the packed encodings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    Bytes(Vec<u8>),
    Str(String),
    /// Any integer from `i64` or `u64` (and beyond: the whole `i128` range packs).
    Int(i128),
}

impl Element {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Element::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Element::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, if this is one that fits a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Element::Int(n) => u64::try_from(*n).ok(),
            _ => None,
        }
    }

    /// The integer, if this is one that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Element::Int(n) => i64::try_from(*n).ok(),
            _ => None,
        }
    }
}

impl From<&str> for Element {
    fn from(s: &str) -> Element {
        Element::Str(s.to_owned())
    }
}

impl From<String> for Element {
    fn from(s: String) -> Element {
        Element::Str(s)
    }
}

impl From<&[u8]> for Element {
    fn from(b: &[u8]) -> Element {
        Element::Bytes(b.to_vec())
    }
}

impl From<Vec<u8>> for Element {
    fn from(b: Vec<u8>) -> Element {
        Element::Bytes(b)
    }
}

macro_rules! int_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Element {
            fn from(n: $t) -> Element {
                Element::Int(i128::from(n))
            }
        }
    )*};
}
int_from!(u8, u16, u32, u64, i8, i16, i32, i64, i128);

/// Builds a packed key element by element, without intermediate [`Element`]s.
///
/// `Key::new().str("u").str(name).build()` is `pack(&["u".into(), name.into()])`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Vec<u8>);

impl Key {
    /// The empty tuple.
    pub fn new() -> Key {
        Key(Vec::new())
    }

    /// Appends a UTF-8 string element.
    pub fn str(mut self, s: &str) -> Key {
        put_terminated(&mut self.0, STRING, s.as_bytes());
        self
    }

    /// Appends a byte-string element.
    pub fn bytes(mut self, b: &[u8]) -> Key {
        put_terminated(&mut self.0, BYTES, b);
        self
    }

    /// Appends an integer element (any of `u8`–`u64`, `i8`–`i64`, `i128`).
    pub fn int(mut self, n: impl Into<i128>) -> Key {
        put_int(&mut self.0, n.into());
        self
    }

    /// Appends any element.
    pub fn push(mut self, element: impl Into<Element>) -> Key {
        put(&mut self.0, &element.into());
        self
    }

    /// The packed key so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The packed key.
    pub fn build(self) -> Vec<u8> {
        self.0
    }

    /// `[begin, end)` of this tuple and every tuple that extends it (see [`range`]).
    pub fn range(self) -> (Vec<u8>, Vec<u8>) {
        range(&self.0)
    }
}

impl From<Key> for Vec<u8> {
    fn from(key: Key) -> Vec<u8> {
        key.0
    }
}

fn put_terminated(out: &mut Vec<u8>, code: u8, bytes: &[u8]) {
    out.push(code);
    for &b in bytes {
        out.push(b);
        if b == TERMINATOR {
            out.push(ESCAPE);
        }
    }
    out.push(TERMINATOR);
}

/// FoundationDB's integer encoding: the type code carries the sign and the length of the
/// magnitude in bytes, then the magnitude big-endian (ones' complement when negative, so
/// that larger magnitudes sort first). Magnitudes over 8 bytes get an explicit length byte.
fn put_int(out: &mut Vec<u8>, n: i128) {
    if n == 0 {
        out.push(ZERO);
        return;
    }
    let magnitude = n.unsigned_abs();
    let len = 16 - (magnitude.leading_zeros() / 8) as usize;
    let be = magnitude.to_be_bytes();
    let digits = &be[16 - len..];
    // `len` is at most 16, so these casts cannot truncate
    let len_byte = len as u8;
    if n > 0 {
        if len <= 8 {
            out.push(ZERO + len_byte);
        } else {
            out.extend_from_slice(&[POS_BIG_INT, len_byte]);
        }
        out.extend_from_slice(digits);
    } else {
        if len <= 8 {
            out.push(ZERO - len_byte);
        } else {
            out.extend_from_slice(&[NEG_BIG_INT, len_byte ^ 0xff]);
        }
        out.extend(digits.iter().map(|d| !d));
    }
}

fn put(out: &mut Vec<u8>, element: &Element) {
    match element {
        Element::Bytes(b) => put_terminated(out, BYTES, b),
        Element::Str(s) => put_terminated(out, STRING, s.as_bytes()),
        Element::Int(n) => put_int(out, *n),
    }
}

/// Packs a tuple into a key.
pub fn pack(elements: &[Element]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in elements {
        put(&mut out, e);
    }
    out
}

/// Why a key is not a packed tuple.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnpackError {
    #[error("tuple key ends inside an element at byte {0}")]
    Truncated(usize),
    #[error("unsupported tuple type code {code:#04x} at byte {at}")]
    UnknownType { code: u8, at: usize },
    #[error("tuple string at byte {0} is not UTF-8")]
    InvalidUtf8(usize),
    #[error("tuple integer at byte {0} is not canonically encoded or out of range")]
    BadInt(usize),
}

/// Unpacks a key made by [`pack`] or [`Key`].
pub fn unpack(key: &[u8]) -> Result<Vec<Element>, UnpackError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < key.len() {
        let start = i;
        let code = key[i];
        i += 1;
        let element = match code {
            BYTES | STRING => {
                let mut buf = Vec::new();
                loop {
                    let b = *key.get(i).ok_or(UnpackError::Truncated(start))?;
                    i += 1;
                    if b != TERMINATOR {
                        buf.push(b);
                    } else if key.get(i) == Some(&ESCAPE) {
                        buf.push(TERMINATOR);
                        i += 1;
                    } else {
                        break;
                    }
                }
                if code == BYTES {
                    Element::Bytes(buf)
                } else {
                    Element::Str(
                        String::from_utf8(buf).map_err(|_| UnpackError::InvalidUtf8(start))?,
                    )
                }
            }
            NEG_BIG_INT..=POS_BIG_INT => {
                let (n, used) = take_int(code, &key[i..]).map_err(|e| e.at(start))?;
                i += used;
                Element::Int(n)
            }
            _ => return Err(UnpackError::UnknownType { code, at: start }),
        };
        out.push(element);
    }
    Ok(out)
}

/// An integer decoding failure, before its position is known.
enum IntError {
    Truncated,
    Bad,
}

impl IntError {
    fn at(self, at: usize) -> UnpackError {
        match self {
            IntError::Truncated => UnpackError::Truncated(at),
            IntError::Bad => UnpackError::BadInt(at),
        }
    }
}

/// Decodes the integer with type `code` from `rest`; returns it and the bytes used.
fn take_int(code: u8, rest: &[u8]) -> Result<(i128, usize), IntError> {
    if code == ZERO {
        return Ok((0, 0));
    }
    let negative = code < ZERO;
    let (len, header) = match code {
        NEG_BIG_INT => (
            usize::from(*rest.first().ok_or(IntError::Truncated)? ^ 0xff),
            1,
        ),
        POS_BIG_INT => (usize::from(*rest.first().ok_or(IntError::Truncated)?), 1),
        _ => (usize::from(code.abs_diff(ZERO)), 0),
    };
    if (header == 1 && len <= 8) || len > 16 {
        return Err(IntError::Bad);
    }
    let digits = rest.get(header..header + len).ok_or(IntError::Truncated)?;
    let mut magnitude: u128 = 0;
    for &d in digits {
        magnitude = (magnitude << 8) | u128::from(if negative { !d } else { d });
    }
    // canonical: no leading zero byte in the magnitude
    if magnitude >> (8 * (len - 1)) == 0 {
        return Err(IntError::Bad);
    }
    let n = if negative {
        0i128.checked_sub_unsigned(magnitude)
    } else {
        i128::try_from(magnitude).ok()
    };
    Ok((n.ok_or(IntError::Bad)?, header + len))
}

/// The first key after every key that starts with the bytes `prefix`.
///
/// For "every tuple that extends a packed tuple", use [`range`] instead.
///
/// That is `prefix` with its trailing `0xff` bytes dropped and its last byte incremented.
/// A prefix of only `0xff` bytes (or the empty one) has no such key; the result is then
/// `MAX_KEY_BYTES + 1` bytes of `0xff`, which sorts after every key a store accepts.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; crate::MAX_KEY_BYTES + 1]
}

/// `[begin, end)` of the packed tuple `prefix` and of every tuple that extends it.
///
/// The end is `prefix` followed by `0xff`, not [`prefix_end`]: the bytes of `("al\0",)`
/// start with those of `("al",)` (a NUL inside a string is escaped as `0x00 0xff`, and
/// `0x00` also ends a string), and this end leaves such keys out, as FoundationDB's
/// subspaces do. Every other extension continues with a type code, all below `0xff`.
pub fn range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut end = Vec::with_capacity(prefix.len() + 1);
    end.extend_from_slice(prefix);
    end.push(0xff);
    (prefix.to_vec(), end)
}

#[cfg(test)]
mod tests;
