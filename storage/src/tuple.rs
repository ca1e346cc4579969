//! Tuple encoding of keys (FoundationDB's layout): elements are type-tagged and strings
//! are terminated, so packed tuples order like the tuples themselves and a packed prefix
//! never matches a longer string in the same position (`"al"` is not a prefix of
//! `"alice"` once packed).

const BYTES: u8 = 0x01;
const STRING: u8 = 0x02;
const INT: u8 = 0x15;

/// One element of a key tuple.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Element {
    Bytes(Vec<u8>),
    Str(String),
    /// Non-negative integers, encoded big-endian in 8 bytes.
    Int(u64),
}

impl Element {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Element::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for Element {
    fn from(s: &str) -> Element {
        Element::Str(s.to_owned())
    }
}

impl From<u64> for Element {
    fn from(n: u64) -> Element {
        Element::Int(n)
    }
}

fn put_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.push(0);
}

/// Packs a tuple into a key.
pub fn pack(elems: &[Element]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in elems {
        match e {
            Element::Bytes(b) => {
                out.push(BYTES);
                put_escaped(&mut out, b);
            }
            Element::Str(s) => {
                out.push(STRING);
                put_escaped(&mut out, s.as_bytes());
            }
            Element::Int(n) => {
                out.push(INT);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed tuple key at byte {0}")]
pub struct UnpackError(pub usize);

/// Unpacks a key made by [`pack`].
pub fn unpack(key: &[u8]) -> Result<Vec<Element>, UnpackError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < key.len() {
        let tag = key[i];
        i += 1;
        match tag {
            BYTES | STRING => {
                let mut buf = Vec::new();
                loop {
                    let Some(&b) = key.get(i) else {
                        return Err(UnpackError(i));
                    };
                    i += 1;
                    if b == 0 {
                        if key.get(i) == Some(&0xff) {
                            buf.push(0);
                            i += 1;
                        } else {
                            break;
                        }
                    } else {
                        buf.push(b);
                    }
                }
                if tag == BYTES {
                    out.push(Element::Bytes(buf));
                } else {
                    out.push(Element::Str(
                        String::from_utf8(buf).map_err(|_| UnpackError(i))?,
                    ));
                }
            }
            INT => {
                let bytes: [u8; 8] = key
                    .get(i..i + 8)
                    .and_then(|s| s.try_into().ok())
                    .ok_or(UnpackError(i))?;
                out.push(Element::Int(u64::from_be_bytes(bytes)));
                i += 8;
            }
            _ => return Err(UnpackError(i - 1)),
        }
    }
    Ok(out)
}

/// The first key after every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // every byte was 0xff (or empty): nothing sorts after but longer 0xff runs
    vec![0xff; prefix.len() + 1]
}

/// `[begin, end)` of all keys that extend the packed tuple `prefix`.
pub fn range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (prefix.to_vec(), prefix_end(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn s(x: &str) -> Element {
        Element::from(x)
    }

    #[test]
    fn round_trip() {
        let t = vec![
            s("u"),
            s("a\0b"),
            Element::Int(7),
            Element::Bytes(vec![0, 1, 0xff]),
        ];
        assert_eq!(unpack(&pack(&t)).unwrap(), t);
        assert!(unpack(&[STRING, b'a']).is_err());
        assert!(unpack(&[0x99]).is_err());
    }

    #[test]
    fn packed_order_is_tuple_order() {
        let mut rng = rand::thread_rng();
        for _ in 0..2000 {
            let a: Vec<Element> = (0..rng.gen_range(1..4))
                .map(|_| {
                    let len = rng.gen_range(0..4);
                    Element::Str((0..len).map(|_| rng.gen_range(0u8..4) as char).collect())
                })
                .collect();
            let b: Vec<Element> = (0..rng.gen_range(1..4))
                .map(|_| {
                    let len = rng.gen_range(0..4);
                    Element::Str((0..len).map(|_| rng.gen_range(0u8..4) as char).collect())
                })
                .collect();
            assert_eq!(a.cmp(&b), pack(&a).cmp(&pack(&b)), "{a:?} {b:?}");
        }
    }

    #[test]
    fn no_prefix_collision() {
        let (begin, end) = range(&pack(&[s("s"), s("al")]));
        let alice = pack(&[s("s"), s("alice"), s("")]);
        assert!(!(alice >= begin && alice < end));
        let al = pack(&[s("s"), s("al"), s("nb")]);
        assert!(al >= begin && al < end);
    }

    #[test]
    fn prefix_end_is_past_every_extension() {
        assert_eq!(prefix_end(b"ab"), b"ac".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert!(
            prefix_end(b"\xff").as_slice() > b"\xff\xff\xff".as_slice()
                || prefix_end(b"\xff") == vec![0xff, 0xff]
        );
    }
}
