//! The SSRF guard: webhook URLs are user input, so a delivery must never reach into the cluster, the host or a
//! cloud metadata endpoint.
//!
//! The check happens at connect time, on the addresses actually dialled: [`GuardedResolver`] is the HTTP
//! client's DNS resolver and drops every non-public address a name resolves to (a name that resolves only to
//! internal addresses fails with [`RefusedDestination`]); literal IP hosts, which never reach a resolver, are
//! checked by [`check_literal_host`] before the request is made. Checking the URL when the user saved it is not
//! enough: DNS may answer differently at delivery time (rebinding). Redirects are off, so a public receiver cannot
//! bounce the request inward either.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Which destinations webhooks may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetPolicy {
    /// Public unicast addresses only: what production runs.
    PublicOnly,
    /// Anything, loopback and private networks included (`WEBHOOK_ALLOW_PRIVATE_TARGETS=true`): development and
    /// tests, whose receivers listen on 127.0.0.1.
    AllowPrivate,
}

impl TargetPolicy {
    /// Whether a webhook may connect to `address`: always under `AllowPrivate`, else only a public unicast one.
    pub fn allows(self, address: IpAddr) -> bool {
        match self {
            TargetPolicy::AllowPrivate => true,
            TargetPolicy::PublicOnly => observability::address::is_public(address),
        }
    }
}

/// A webhook destination the policy forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("webhook destination `{host}` refused: {why}")]
pub struct RefusedDestination {
    /// The refused literal address or DNS name; empty when the URL has no host at all.
    pub host: String,
    /// Why it was refused, as a phrase that completes the error message.
    pub why: &'static str,
}

/// Refuses a URL whose host is a literal IP address the policy forbids (names are checked by the resolver).
pub fn check_literal_host(url: &Url, policy: TargetPolicy) -> Result<(), RefusedDestination> {
    let address = match url.host() {
        Some(Host::Ipv4(address)) => IpAddr::V4(address),
        Some(Host::Ipv6(address)) => IpAddr::V6(address),
        Some(Host::Domain(_)) => return Ok(()),
        None => return Err(RefusedDestination { host: String::new(), why: "the URL has no host" }),
    };
    if policy.allows(address) {
        Ok(())
    } else {
        Err(RefusedDestination { host: address.to_string(), why: "not a public address" })
    }
}

/// The webhook client's DNS resolver: the system resolver, minus every address the policy forbids.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    policy: TargetPolicy,
}

impl GuardedResolver {
    /// A resolver that keeps only the addresses `policy` allows.
    pub fn new(policy: TargetPolicy) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved.into_iter().filter(|address| policy.allows(address.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(RefusedDestination { host, why: "it resolves to no public address" }) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_allow_flag_lets_everything_through() {
        for address in ["127.0.0.1", "::1", "10.0.0.1", "169.254.169.254", "fd00::1"] {
            assert!(TargetPolicy::AllowPrivate.allows(ip(address)));
        }
    }

    #[test]
    fn literal_hosts_are_checked_before_connecting() {
        let url = |text: &str| Url::parse(text).unwrap();
        assert!(check_literal_host(&url("http://169.254.169.254/latest/meta-data"), TargetPolicy::PublicOnly).is_err());
        assert!(check_literal_host(&url("https://[::1]:8443/hook"), TargetPolicy::PublicOnly).is_err());
        assert!(check_literal_host(&url("https://[::ffff:7f00:1]/hook"), TargetPolicy::PublicOnly).is_err());
        assert!(check_literal_host(&url("https://93.184.215.14/hook"), TargetPolicy::PublicOnly).is_ok());
        assert!(check_literal_host(&url("https://hooks.example.com/x"), TargetPolicy::PublicOnly).is_ok());
        assert!(check_literal_host(&url("http://127.0.0.1:9/hook"), TargetPolicy::AllowPrivate).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_internal_answers() {
        let refused = GuardedResolver::new(TargetPolicy::PublicOnly).resolve("localhost".parse().unwrap()).await;
        let error = refused.err().expect("localhost resolves to loopback only");
        assert!(error.downcast_ref::<RefusedDestination>().is_some(), "{error}");
        let allowed = GuardedResolver::new(TargetPolicy::AllowPrivate).resolve("localhost".parse().unwrap()).await;
        assert!(allowed.expect("allowed").any(|address| address.ip().is_loopback()));
    }
}
