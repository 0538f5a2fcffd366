//! A short-lived fallback cache for idempotent reads.
//!
//! It is *not* a performance cache: fresh responses are always fetched first. Only when the
//! downstream fails or its circuit is open does a read fall back to the last good answer, if that
//! answer is younger than the TTL. Entries are keyed by path *and* request headers, so a response
//! fetched with one caller's credentials is never served to another.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http::HeaderMap;

/// Headers that differ on every call without changing the answer; they are left out of the key.
const VOLATILE_HEADERS: &[&str] = &["traceparent", "tracestate", "baggage", "x-request-id"];

/// Upper bound on entries, so a caller iterating over many ids cannot grow memory without limit.
const MAX_ENTRIES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    path: String,
    headers: Vec<(String, Vec<u8>)>,
}

impl CacheKey {
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

#[derive(Debug)]
pub(crate) struct FallbackCache {
    ttl: Duration,
    entries: Mutex<HashMap<CacheKey, (Instant, Bytes)>>,
}

impl FallbackCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn store(&self, key: CacheKey, body: Bytes) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, (stored_at, _)| now.duration_since(*stored_at) < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                let oldest = entries.iter().min_by_key(|(_, (stored_at, _))| *stored_at).map(|(key, _)| key.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(key, (now, body));
    }

    /// The stored body, if younger than the TTL.
    pub(crate) fn fresh(&self, key: &CacheKey) -> Option<Bytes> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(key).filter(|(stored_at, _)| stored_at.elapsed() < self.ttl).map(|(_, body)| body.clone())
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
        let entries = cache.entries.lock().unwrap();
        assert_eq!(entries.len(), MAX_ENTRIES);
    }
}
