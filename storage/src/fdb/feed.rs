//! The change feed of the FoundationDB backend: its log's encoding, the task that
//! follows the log and publishes it, and the trimming of old entries.

use super::*;

/// Follows the log until the store is dropped (which aborts this task).
pub(super) async fn follow_feed(shared: Arc<Shared>, mut last: Option<Stamp>) {
    let mut trimmed = Instant::now();
    loop {
        match poll_feed(&shared, &mut last).await {
            Ok(watch) => {
                if let Ok(Err(error)) = tokio::time::timeout(FEED_POLL, watch).await {
                    tracing::debug!(%error, "fdb feed watch failed");
                    tokio::time::sleep(FEED_RETRY).await;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "reading the fdb change feed failed; retrying");
                tokio::time::sleep(FEED_RETRY).await;
            }
        }
        if trimmed.elapsed() >= FEED_TRIM_EVERY {
            trimmed = Instant::now();
            if let Err(error) = trim_feed(&shared).await {
                tracing::warn!(%error, "trimming the fdb change feed failed");
            }
        }
    }
}

/// Publishes the log's entries after `last`; returns a watch of the head.
pub(super) async fn poll_feed(
    shared: &Shared,
    last: &mut Option<Stamp>,
) -> Result<impl Future<Output = FdbResult<()>>, StoreError> {
    let keys = &shared.keys;
    let trx = shared.db.create_trx().map_err(fdb_error)?;
    let from = last.map_or_else(|| keys.feed.clone(), |s| keys.feed_entry(&s));
    let rows = read_range(
        &trx,
        (&from, &keys.feed_end),
        0,
        false,
        true,
        keys.feed.len(),
    )
    .await
    .map_err(fdb_error)?;
    // fires when the head moves after the read version of the read above
    let watch = trx.watch(&keys.head);
    trx.commit().await.map_err(|e| fdb_error(*e))?;
    let read = decode_feed(&rows, *last);
    *last = read.last;
    match read.batches {
        Ok(batches) if !read.gap => {
            let feed = shared.feed();
            for batch in batches {
                shared.committed.fetch_max(batch.version, Ordering::AcqRel);
                // no receiver is not an error: nobody is listening yet
                let _ = feed.send(Arc::new(batch));
            }
        }
        outcome => {
            match outcome {
                Err(error) => tracing::error!(%error, "corrupt fdb change feed entry"),
                Ok(_) => tracing::warn!("the fdb change feed was trimmed past this node"),
            }
            // subscribers must re-read: close their receivers
            *shared.feed() = broadcast::channel(FEED_CAPACITY).0;
            if let Some(stamp) = &read.last {
                shared
                    .committed
                    .fetch_max(stamp_version(stamp), Ordering::AcqRel);
            }
        }
    }
    Ok(watch)
}

/// Clears the log's entries older than the retention, always keeping the newest one
/// (the feed tasks find their place by it).
pub(super) async fn trim_feed(shared: &Shared) -> Result<(), StoreError> {
    let keys = &shared.keys;
    let trx = shared.db.create_trx().map_err(fdb_error)?;
    let now = trx.get_read_version().await.map_err(fdb_error)?;
    let head = trx.get(&keys.head, true).await.map_err(fdb_error)?;
    let (Some(head), Ok(cutoff)) = (
        parse_head(head.as_deref())?,
        u64::try_from(now - FEED_RETENTION_VERSIONS),
    ) else {
        return Ok(());
    };
    let mut until: Stamp = [0; 10];
    until[..8].copy_from_slice(&cutoff.to_be_bytes());
    let end = keys.feed_entry(&until.min(head));
    let old = read_range(&trx, (&keys.feed, &end), 1, false, true, 0).await;
    if old.map_err(fdb_error)?.is_empty() {
        return Ok(());
    }
    trx.clear_range(&keys.feed, &end);
    trx.commit().await.map_err(|e| fdb_error(*e))?;
    Ok(())
}

/// What one read of the log found.
pub(super) struct FeedRead {
    /// The new entries, merged by commit version.
    pub(super) batches: Result<Vec<ChangeBatch>, String>,
    /// Whether the last published entry was gone (trimmed): entries were missed.
    pub(super) gap: bool,
    /// The entry to read from next time.
    pub(super) last: Option<Stamp>,
}

/// Decodes log rows (keys without the feed prefix) read from `last` on.
pub(super) fn decode_feed(rows: &[KeyValue], last: Option<Stamp>) -> FeedRead {
    let stamp_of = |key: &[u8]| key.get(..10).and_then(|s| Stamp::try_from(s).ok());
    let first = rows.first().and_then(|(k, _)| stamp_of(k));
    let gap = last.is_some() && first != last;
    let newest = rows.last().and_then(|(k, _)| stamp_of(k));
    FeedRead {
        batches: decode_entries(rows, last),
        gap,
        // after a gap with nothing left to anchor on, read the whole log next time
        last: newest.or(if gap { None } else { last }),
    }
}

pub(super) fn decode_entries(
    rows: &[KeyValue],
    last: Option<Stamp>,
) -> Result<Vec<ChangeBatch>, String> {
    // (stamp, its chunks so far)
    let mut entries: Vec<(Stamp, Vec<u8>, u16)> = Vec::new();
    for (key, value) in rows {
        let (Ok(stamp), Ok(chunk)) = (
            Stamp::try_from(key.get(..10).unwrap_or_default()),
            <[u8; 2]>::try_from(key.get(10..).unwrap_or_default()),
        ) else {
            return Err(format!("bad feed key {key:?}"));
        };
        if Some(stamp) == last {
            continue;
        }
        let chunk = u16::from_be_bytes(chunk);
        match entries.last_mut() {
            Some((s, bytes, next)) if *s == stamp && *next == chunk => {
                bytes.extend_from_slice(value);
                *next += 1;
            }
            _ if chunk == 0 => entries.push((stamp, value.clone(), 1)),
            _ => {
                return Err(format!(
                    "feed entry {stamp:?} misses a chunk before {chunk}"
                ))
            }
        }
    }
    let mut batches: Vec<ChangeBatch> = Vec::new();
    for (stamp, bytes, _) in entries {
        let version = stamp_version(&stamp);
        let mutations = decode_mutations(&bytes)?;
        match batches.last_mut() {
            // committed in the same FoundationDB batch, in this order
            Some(batch) if batch.version == version => batch.mutations.extend(mutations),
            _ => batches.push(ChangeBatch { version, mutations }),
        }
    }
    Ok(batches)
}

const SET: u8 = 1;
const CLEAR: u8 = 2;
const CLEAR_RANGE: u8 = 3;

/// A log entry (format 1): per mutation a tag (1 set, 2 clear, 3 clear range), then its
/// byte strings, each a big-endian `u32` length and the bytes. Values of any bytes take
/// no more room than they hold, which a serde encoding of `Vec<u8>` would not.
pub(super) fn encode_mutations(mutations: &[Mutation]) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("keys and values are small");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    for m in mutations {
        match m {
            Mutation::Set { key, value } => {
                out.push(SET);
                put(&mut out, key);
                put(&mut out, value);
            }
            Mutation::Clear { key } => {
                out.push(CLEAR);
                put(&mut out, key);
            }
            Mutation::ClearRange { begin, end } => {
                out.push(CLEAR_RANGE);
                put(&mut out, begin);
                put(&mut out, end);
            }
        }
    }
    out
}

pub(super) fn decode_mutations(mut bytes: &[u8]) -> Result<Vec<Mutation>, String> {
    fn take(bytes: &mut &[u8]) -> Result<Vec<u8>, String> {
        let (len, rest) = bytes.split_at_checked(4).ok_or("truncated feed entry")?;
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let (value, rest) = rest.split_at_checked(len).ok_or("truncated feed entry")?;
        *bytes = rest;
        Ok(value.to_vec())
    }
    let mut mutations = Vec::new();
    while let Some((&tag, rest)) = bytes.split_first() {
        bytes = rest;
        mutations.push(match tag {
            SET => Mutation::Set {
                key: take(&mut bytes)?,
                value: take(&mut bytes)?,
            },
            CLEAR => Mutation::Clear {
                key: take(&mut bytes)?,
            },
            CLEAR_RANGE => Mutation::ClearRange {
                begin: take(&mut bytes)?,
                end: take(&mut bytes)?,
            },
            other => return Err(format!("unknown feed mutation tag {other}")),
        });
    }
    Ok(mutations)
}
