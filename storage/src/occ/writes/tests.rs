use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// A snapshot over a plain map.
impl Snapshot for BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(BTreeMap::get(self, key).cloned())
    }

    fn scan<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        reverse: bool,
    ) -> Result<super::super::Rows<'a>, StoreError> {
        let range = self
            .range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)))
            .map(|(k, v)| Ok((k.clone(), v.clone())));
        Ok(if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        })
    }
}

fn key(rng: &mut StdRng) -> Vec<u8> {
    vec![b'a' + rng.gen_range(0..10)]
}

/// Random writes over a random snapshot, checked against applying the same mutations to
/// a copy of the snapshot.
#[test]
fn reads_agree_with_applying_the_writes() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..2000 {
        let base: BTreeMap<Vec<u8>, Vec<u8>> = (0..rng.gen_range(0..8))
            .map(|_| (key(&mut rng), b"base".to_vec()))
            .collect();
        let mut model = base.clone();
        let mut buffer = WriteBuffer::default();
        for i in 0..rng.gen_range(0..8) {
            let k = key(&mut rng);
            match rng.gen_range(0..3) {
                0 => {
                    let v = format!("v{i}").into_bytes();
                    buffer.set(&k, &v);
                    model.insert(k, v);
                }
                1 => {
                    buffer.clear(&k);
                    model.remove(&k);
                }
                _ => {
                    let e = key(&mut rng);
                    buffer.clear_range(&k, &e);
                    model.retain(|m, _| !(*m >= k && *m < e));
                }
            }
        }
        for k in 0..10 {
            let k = [b'a' + k];
            let own = buffer
                .lookup(&k)
                .map(|v| v.map(<[u8]>::to_vec))
                .unwrap_or_else(|| base.get(&k[..]).cloned());
            assert_eq!(own, model.get(&k[..]).cloned());
        }
        let begin = key(&mut rng);
        let end = key(&mut rng);
        if begin >= end {
            continue;
        }
        let limit = rng.gen_range(0..4);
        let reverse = rng.gen_bool(0.5);
        let got = buffer
            .overlay(&begin, &end)
            .read(&base, limit, reverse)
            .unwrap();
        let all = model
            .range::<[u8], _>((Bound::Included(&begin[..]), Bound::Excluded(&end[..])))
            .map(|(k, v)| (k.clone(), v.clone()));
        let take = if limit == 0 { usize::MAX } else { limit };
        let expected: Vec<KeyValue> = if reverse {
            all.rev().take(take).collect()
        } else {
            all.take(take).collect()
        };
        assert_eq!(
            got, expected,
            "{begin:?}..{end:?} limit {limit} rev {reverse}"
        );
    }
}

#[test]
fn limits_are_reported_at_the_first_breach() {
    let mut buffer = WriteBuffer::default();
    buffer.set(b"k", &vec![0; MAX_VALUE_BYTES]);
    buffer.set(&vec![1; MAX_KEY_BYTES], b"v");
    buffer.clear_range(&vec![1; MAX_KEY_BYTES], &vec![1; MAX_KEY_BYTES + 1]);
    assert_eq!(buffer.check_limits(), Ok(()));
    buffer.set(b"k", &vec![0; MAX_VALUE_BYTES + 1]);
    buffer.clear(&vec![1; MAX_KEY_BYTES + 1]);
    assert_eq!(buffer.check_limits(), Err(StoreError::TooLarge("value")));

    let mut buffer = WriteBuffer::default();
    for i in 0..=MAX_TRANSACTION_BYTES / MAX_VALUE_BYTES {
        buffer.set(&i.to_be_bytes(), &vec![0; MAX_VALUE_BYTES]);
    }
    assert_eq!(
        buffer.check_limits(),
        Err(StoreError::TooLarge("transaction"))
    );
}

#[test]
fn uncleared_overlay_is_detected() {
    let mut buffer = WriteBuffer::default();
    buffer.set(b"b", b"1");
    assert!(buffer.overlay(b"a", b"z").is_uncleared(b"a", b"z"));
    buffer.clear_range(b"c", b"d");
    assert!(!buffer.overlay(b"a", b"z").is_uncleared(b"a", b"z"));
    assert!(buffer.overlay(b"d", b"z").is_uncleared(b"d", b"z"));
}
