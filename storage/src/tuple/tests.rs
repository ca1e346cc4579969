use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn s(x: &str) -> Element {
    Element::from(x)
}

/// Integers at every length boundary of the encoding.
fn boundary_ints() -> Vec<i128> {
    let mut out = vec![0, i128::MIN, i128::MAX, i128::MIN + 1];
    for bytes in 1..16 {
        let edge = 1i128 << (8 * bytes);
        out.extend([edge - 1, edge, edge + 1, -(edge - 1), -edge, -(edge + 1)]);
    }
    out.extend([
        i128::from(i64::MIN),
        i128::from(i64::MAX),
        i128::from(u64::MAX),
        -i128::from(u64::MAX),
    ]);
    out
}

/// A random element drawn from a small alphabet, so that equal prefixes, embedded
/// terminators and `0xff` bytes are common.
fn random_element(rng: &mut StdRng) -> Element {
    let len = rng.gen_range(0..4);
    let alphabet = [0u8, 1, b'a', 0xfe, 0xff];
    match rng.gen_range(0..3) {
        0 => Element::Bytes(
            (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect(),
        ),
        1 => Element::Str(
            (0..len)
                .map(|_| ['\0', 'a', 'b', 'é'][rng.gen_range(0..4)])
                .collect(),
        ),
        _ => {
            let ints = boundary_ints();
            Element::Int(match rng.gen_range(0..3) {
                0 => ints[rng.gen_range(0..ints.len())],
                1 => i128::from(rng.gen::<i64>()),
                _ => i128::from(rng.gen_range(-300i64..300)),
            })
        }
    }
}

fn random_tuple(rng: &mut StdRng) -> Vec<Element> {
    (0..rng.gen_range(0..4))
        .map(|_| random_element(rng))
        .collect()
}

#[test]
fn encodings_match_foundationdb() {
    // expected bytes from FoundationDB's tuple layer (python: fdb.tuple.pack)
    let cases: Vec<(Element, &[u8])> = vec![
        (s("foo\0bar"), b"\x02foo\x00\xffbar\x00"),
        (s(""), b"\x02\x00"),
        (Element::from(&b"\x01\x00"[..]), b"\x01\x01\x00\xff\x00"),
        (Element::from(0u64), b"\x14"),
        (Element::from(1u64), b"\x15\x01"),
        (Element::from(-1i64), b"\x13\xfe"),
        (Element::from(255u64), b"\x15\xff"),
        (Element::from(256u64), b"\x16\x01\x00"),
        (Element::from(-256i64), b"\x12\xfe\xff"),
        (
            Element::from(u64::MAX),
            b"\x1c\xff\xff\xff\xff\xff\xff\xff\xff",
        ),
        (
            Element::from(i64::MIN),
            b"\x0c\x7f\xff\xff\xff\xff\xff\xff\xff",
        ),
        (
            Element::Int(1 << 64),
            b"\x1d\x09\x01\x00\x00\x00\x00\x00\x00\x00\x00",
        ),
        (
            Element::Int(-(1 << 64)),
            b"\x0b\xf6\xfe\xff\xff\xff\xff\xff\xff\xff\xff",
        ),
    ];
    for (element, bytes) in cases {
        assert_eq!(pack(std::slice::from_ref(&element)), bytes, "{element:?}");
        assert_eq!(unpack(bytes).unwrap(), vec![element]);
    }
}

#[test]
fn round_trip() {
    let mut tuple = vec![
        s("u"),
        s("a\0b"),
        s(""),
        Element::Bytes(vec![0, 1, 0xff]),
        Element::Bytes(vec![]),
    ];
    tuple.extend(boundary_ints().into_iter().map(Element::Int));
    assert_eq!(unpack(&pack(&tuple)).unwrap(), tuple);
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..5000 {
        let t = random_tuple(&mut rng);
        assert_eq!(unpack(&pack(&t)).unwrap(), t);
    }
}

#[test]
fn packed_order_is_tuple_order() {
    let mut rng = StdRng::seed_from_u64(2);
    for _ in 0..20_000 {
        let a = random_tuple(&mut rng);
        let b = random_tuple(&mut rng);
        assert_eq!(a.cmp(&b), pack(&a).cmp(&pack(&b)), "{a:?} {b:?}");
    }
    let mut ints = boundary_ints();
    ints.sort();
    ints.dedup();
    let packed: Vec<Vec<u8>> = ints.iter().map(|&n| pack(&[Element::Int(n)])).collect();
    assert!(packed.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn no_prefix_collision() {
    let (begin, end) = range(&pack(&[s("s"), s("al")]));
    let inside = |k: &[u8]| k >= begin.as_slice() && k < end.as_slice();
    assert!(!inside(&pack(&[s("s"), s("alice"), s("")])));
    assert!(!inside(&pack(&[s("s"), s("al\0"), s("")])));
    assert!(inside(&pack(&[s("s"), s("al"), s("nb")])));
    assert!(inside(&pack(&[s("s"), s("al")])));

    // the range of a packed tuple holds exactly the tuples that extend it
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..20_000 {
        let a = random_tuple(&mut rng);
        let mut b = random_tuple(&mut rng);
        if rng.gen_bool(0.3) {
            b = a.iter().cloned().chain(b).collect();
        }
        let extends = b.starts_with(&a);
        let (begin, end) = range(&pack(&a));
        let packed = pack(&b);
        assert_eq!(packed >= begin && packed < end, extends, "{a:?} {b:?}");
        if extends {
            assert!(packed.starts_with(&pack(&a)));
        }
    }
}

#[test]
fn builder_packs_like_pack() {
    let built = Key::new()
        .str("s")
        .bytes(b"\0x")
        .int(7u64)
        .int(-3i64)
        .push("tail")
        .build();
    let packed = pack(&[
        s("s"),
        Element::Bytes(b"\0x".to_vec()),
        Element::Int(7),
        Element::Int(-3),
        s("tail"),
    ]);
    assert_eq!(built, packed);
    assert_eq!(
        Key::new().str("u").range(),
        range(&pack(&[s("u")])),
        "builder range"
    );
    assert_eq!(Vec::from(Key::new().str("u")), Key::new().str("u").build());
}

#[test]
fn malformed_keys_are_refused() {
    assert_eq!(unpack(b"\x02ab"), Err(UnpackError::Truncated(0)));
    assert_eq!(unpack(b"\x02a\x00\x16\x01"), Err(UnpackError::Truncated(3)));
    assert_eq!(
        unpack(b"\x02a\x00\x99"),
        Err(UnpackError::UnknownType { code: 0x99, at: 3 })
    );
    assert_eq!(unpack(b"\x02\xff\x00"), Err(UnpackError::InvalidUtf8(0)));
    // non-canonical integers: a leading zero byte, a big-int header for a small one
    assert_eq!(unpack(b"\x16\x00\x01"), Err(UnpackError::BadInt(0)));
    assert_eq!(unpack(b"\x1d\x01\x05"), Err(UnpackError::BadInt(0)));
    // more than 16 bytes of magnitude does not fit an i128
    let mut big = vec![POS_BIG_INT, 17];
    big.extend([1; 17]);
    assert_eq!(unpack(&big), Err(UnpackError::BadInt(0)));
    assert_eq!(unpack(b""), Ok(vec![]));
}

#[test]
fn integer_accessors() {
    assert_eq!(Element::from(u64::MAX).as_u64(), Some(u64::MAX));
    assert_eq!(Element::from(u64::MAX).as_i64(), None);
    assert_eq!(Element::from(-1i32).as_i64(), Some(-1));
    assert_eq!(Element::from(-1i32).as_u64(), None);
    assert_eq!(s("x").as_u64(), None);
    assert_eq!(s("x").as_str(), Some("x"));
    assert_eq!(Element::from(vec![1u8]).as_bytes(), Some(&[1u8][..]));
}

#[test]
fn prefix_end_is_past_every_extension() {
    assert_eq!(prefix_end(b"ab"), b"ac".to_vec());
    assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
    assert_eq!(prefix_end(b"a\xff\xff"), b"b".to_vec());
    let longest = vec![0xff; crate::MAX_KEY_BYTES];
    for prefix in [&b""[..], b"\xff", b"\xff\xff"] {
        let end = prefix_end(prefix);
        assert!(end > longest, "{prefix:?}");
    }
}
