//! A short-lived fallback cache for idempotent reads.
//!
//! It is *not* a performance cache: fresh responses are always fetched first. Only when the
//! downstream fails or its circuit is open does a read fall back to the last good answer, if that
//! answer is younger than the TTL. Entries are keyed by path *and* request headers, so a response
//! fetched with one caller's credentials is never served to another.

use std::time::Duration;

use axum::body::Bytes;
use http::HeaderMap;
use moka::sync::Cache;

/// Headers that differ on every call without changing the answer; they are left out of the key.
const VOLATILE_HEADERS: &[&str] = &["traceparent", "tracestate", "baggage", "x-request-id"];

/// Upper bound on entries, so a caller iterating over many ids cannot grow memory without limit.
const MAX_ENTRIES: u64 = 1024;

/// What a response is cached under: the path and every header that can change the answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    path: String,
    headers: Vec<(String, Vec<u8>)>,
}

impl CacheKey {
    /// The key of a request for `path` sent with `headers` (volatile ones left out, order ignored).
    pub(crate) fn new(path: &str, headers: &HeaderMap) -> Self {
        let mut headers: Vec<(String, Vec<u8>)> = headers
            .iter()
            .filter(|(name, _)| !VOLATILE_HEADERS.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        headers.sort();
        Self { path: path.to_owned(), headers }
    }
}

/// The last good body per key, for at most the TTL and at most [`MAX_ENTRIES`] keys (moka evicts the least
/// valuable beyond that).
#[derive(Debug)]
pub(crate) struct FallbackCache {
    entries: Cache<CacheKey, Bytes>,
}

impl FallbackCache {
    /// An empty cache whose entries expire `ttl` after they were stored.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { entries: Cache::builder().max_capacity(MAX_ENTRIES).time_to_live(ttl).build() }
    }

    /// Keeps `body` as the answer for `key`, replacing an older one.
    pub(crate) fn store(&self, key: CacheKey, body: Bytes) {
        self.entries.insert(key, body);
    }

    /// The stored body, if younger than the TTL.
    pub(crate) fn fresh(&self, key: &CacheKey) -> Option<Bytes> {
        self.entries.get(key)
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn key_ignores_trace_headers_but_not_credentials() {
        let mut first = HeaderMap::new();
        first.insert("authorization", HeaderValue::from_static("Bearer one"));
        first.insert("traceparent", HeaderValue::from_static("00-aa-bb-01"));
        let mut same = first.clone();
        same.insert("traceparent", HeaderValue::from_static("00-cc-dd-01"));
        let mut other_user = first.clone();
        other_user.insert("authorization", HeaderValue::from_static("Bearer two"));
        assert_eq!(CacheKey::new("/x", &first), CacheKey::new("/x", &same));
        assert_ne!(CacheKey::new("/x", &first), CacheKey::new("/x", &other_user));
        assert_ne!(CacheKey::new("/x", &first), CacheKey::new("/y", &first));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = FallbackCache::new(Duration::ZERO);
        let key = CacheKey::new("/x", &HeaderMap::new());
        cache.store(key.clone(), Bytes::from_static(b"{}"));
        assert_eq!(cache.fresh(&key), None);

        let cache = FallbackCache::new(Duration::from_secs(60));
        cache.store(key.clone(), Bytes::from_static(b"{}"));
        assert_eq!(cache.fresh(&key), Some(Bytes::from_static(b"{}")));
    }

    #[test]
    fn size_is_bounded() {
        let cache = FallbackCache::new(Duration::from_secs(60));
        for index in 0..MAX_ENTRIES + 10 {
            cache.store(CacheKey::new(&format!("/item/{index}"), &HeaderMap::new()), Bytes::new());
        }
        // moka applies evictions in batches; settle them before counting.
        cache.entries.run_pending_tasks();
        assert!(cache.entries.entry_count() <= MAX_ENTRIES, "{} entries", cache.entries.entry_count());
    }
}
