//! Ports for the services a test starts. Services take their port from the environment, so the test chooses it.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::io;
use std::net::{Ipv4Addr, TcpListener};

/// Where [`free_port`] starts looking; below it are well-known and commonly configured ports.
const FIXED_PORTS_FROM: u16 = 20_000;

/// A port on 127.0.0.1 that was free a moment ago, from below the kernel's ephemeral range.
///
/// Tests stop a service and start it again on the same port, and a port from the ephemeral range can meanwhile
/// become the local end of any outgoing connection on the machine (seen: a restarted recurring-task failing
/// with "Address already in use"); ports below that range are never handed out that way. The search starts at
/// a random port, so concurrent test processes rarely try the same ones.
pub fn free_port() -> io::Result<u16> {
    let (ephemeral_low, _) = ephemeral_port_range();
    let candidates = u64::from(ephemeral_low.saturating_sub(FIXED_PORTS_FROM));
    if candidates == 0 {
        return TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr().map(|address| address.port());
    }
    let start = RandomState::new().hash_one(std::process::id()) % candidates;
    let mut last_error = io::Error::other("no candidate ports");
    for step in 0..candidates {
        // Below `candidates`, which came from a u16.
        let offset = u16::try_from((start + step) % candidates).unwrap_or(0);
        let port = FIXED_PORTS_FROM + offset;
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(_) => return Ok(port),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

/// The kernel's range for ephemeral ports (Linux's default when it cannot be read).
fn ephemeral_port_range() -> (u16, u16) {
    let configured = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok().and_then(|text| {
        let mut bounds = text.split_whitespace().map(|bound| bound.parse::<u16>().ok());
        Some((bounds.next()??, bounds.next()??))
    });
    configured.unwrap_or((32_768, 60_999))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable_and_outside_the_ephemeral_range() {
        let (ephemeral_low, ephemeral_high) = ephemeral_port_range();
        assert!(ephemeral_low <= ephemeral_high);
        let ports: Vec<u16> = (0..20).map(|_| free_port().unwrap()).collect();
        for port in &ports {
            // A machine whose ephemeral range starts below FIXED_PORTS_FROM gets ephemeral ports (bind to 0).
            if ephemeral_low > FIXED_PORTS_FROM {
                assert!((FIXED_PORTS_FROM..ephemeral_low).contains(port), "{port} is in the ephemeral range");
            }
            TcpListener::bind((Ipv4Addr::LOCALHOST, *port)).unwrap();
        }
        // Random starting points: twenty picks are not all the same port.
        assert!(ports.iter().any(|port| *port != ports[0]), "{ports:?}");
    }
}
