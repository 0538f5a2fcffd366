//! Which addresses an outbound call may reach: webhook URLs are user input, and a request to loopback, a private
//! network or the cloud metadata address would turn the service into a proxy into its own network (SSRF). One
//! list, used where a URL is accepted (the backend) and where it is resolved and called (notification).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for public in ["93.184.215.14", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip(public)), "{public} must be allowed");
        }
    }
}
