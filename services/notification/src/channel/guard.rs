//! The SSRF guard: webhook URLs are user input, so a delivery must never reach into the cluster, the host or a
//! cloud metadata endpoint.
//!
//! The check happens at connect time, on the addresses actually dialled: [`GuardedResolver`] is the HTTP
//! client's DNS resolver and drops every non-public address a name resolves to (a name that resolves only to
//! internal addresses fails with [`RefusedDestination`]); literal IP hosts, which never reach a resolver, are
//! checked by [`check_literal_host`] before the request is made. Checking the URL when the user saved it is not
//! enough: DNS may answer differently at delivery time (rebinding). Redirects are off, so a public receiver cannot
//! bounce the request inward either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

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
    pub fn allows(self, address: IpAddr) -> bool {
        match self {
            TargetPolicy::AllowPrivate => true,
            TargetPolicy::PublicOnly => is_public(address),
        }
    }
}

/// A webhook destination the policy forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("webhook destination `{host}` refused: {why}")]
pub struct RefusedDestination {
    pub host: String,
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

/// Whether `address` is a public unicast address, i.e. not loopback, private (RFC 1918), shared (CGNAT),
/// link-local (cloud metadata lives at 169.254.169.254), unique-local, multicast, documentation, benchmarking,
/// reserved or unspecified. IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by
/// that address.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(address) => is_public_v4(address),
        IpAddr::V6(address) => is_public_v6(address),
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    let internal = address.is_unspecified()
        || a == 0 // "this network"
        || address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || address.is_documentation()
        || (a == 198 && (18..20).contains(&b)) // benchmarking, RFC 2544
        || address.is_multicast()
        || a >= 240; // reserved, broadcast included
    !internal
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    if let Some(embedded) = embedded_v4(address) {
        return is_public_v4(embedded);
    }
    let segments = address.segments();
    let internal = address.is_unspecified()
        || address.is_loopback()
        || address.is_multicast()
        || address.is_unique_local() // fc00::/7
        || address.is_unicast_link_local() // fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation 2001:db8::/32
        || (segments[0] == 0x2001 && segments[1] == 0) // Teredo: tunnels to arbitrary IPv4
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]); // discard-only 100::/64
    !internal
}

/// The IPv4 address inside a v4-mapped (`::ffff:a.b.c.d`), v4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) or
/// 6to4 (`2002::/16`) address: connecting to those reaches the IPv4 address.
fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(mapped) = address.to_ipv4_mapped() {
        return Some(mapped);
    }
    let segments = address.segments();
    let octets = address.octets();
    let last_four = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    if segments[..6] == [0; 6] && !address.is_unspecified() && !address.is_loopback() {
        return Some(last_four);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(last_four);
    }
    if segments[0] == 0x2002 {
        return Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]));
    }
    None
}

/// The webhook client's DNS resolver: the system resolver, minus every address the policy forbids.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    policy: TargetPolicy,
}

impl GuardedResolver {
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
    fn internal_addresses_are_refused() {
        for internal in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:0001::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(internal)), "{internal} must be refused");
            assert!(!TargetPolicy::PublicOnly.allows(ip(internal)), "{internal} must be refused");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for public in ["93.184.215.14", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip(public)), "{public} must be allowed");
        }
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
