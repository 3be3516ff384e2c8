//! Which address a request is counted under: the socket peer, or what a trusted proxy reports.
//!
//! Addresses are made canonical first: an IPv4 client reaching a server bound to `[::]` arrives
//! as `::ffff:a.b.c.d`, and is the same client (and the same trusted proxy) as `a.b.c.d`. An IPv6
//! client is counted by its /64, the smallest block a site is given: an address within it costs
//! nothing to change, so counting single addresses would let one host dodge every limit.

use std::net::{IpAddr, Ipv6Addr};

/// The address `peer` is counted under. When `peer` is a trusted proxy, `X-Forwarded-For` is
/// read from the right (the entry the proxy itself added) to the first address that is not a
/// trusted proxy; reading stops at an entry that is not an address, since nothing left of it can
/// be believed, and the last address read stands.
pub fn client_address(trusted: &[IpAddr], peer: IpAddr, headers: &[(String, String)]) -> IpAddr {
    let is_trusted = |a: IpAddr| trusted.iter().any(|t| t.to_canonical() == a);
    let mut client = peer.to_canonical();
    if is_trusted(client) {
        let entries: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
            .flat_map(|(_, v)| v.split(','))
            .collect();
        for entry in entries.into_iter().rev() {
            let Ok(address) = entry.trim().parse::<IpAddr>() else {
                break;
            };
            client = address.to_canonical();
            if !is_trusted(client) {
                break;
            }
        }
    }
    counted(client)
}

/// IPv4 as it is, IPv6 as its /64 network.
fn counted(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => {
            let network = v6.to_bits() & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from_bits(network))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(v: &str) -> Vec<(String, String)> {
        vec![("X-Forwarded-For".to_owned(), v.to_owned())]
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy = ip("10.0.0.1");
        let peer = ip("192.0.2.7");
        let h = xff("203.0.113.9, 198.51.100.2");
        assert_eq!(client_address(&[proxy], peer, &h), peer);
        assert_eq!(client_address(&[proxy], proxy, &h), ip("198.51.100.2"));
        assert_eq!(client_address(&[proxy], proxy, &[]), proxy);
        // A chain of trusted proxies is walked through.
        let inner = ip("10.0.0.2");
        let h = xff("203.0.113.9, 10.0.0.2");
        assert_eq!(
            client_address(&[proxy, inner], proxy, &h),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn mapped_ipv4_peers_are_canonical() {
        let proxy = ip("127.0.0.1");
        let mapped = ip("::ffff:127.0.0.1");
        let h = xff("198.51.100.2");
        assert_eq!(client_address(&[proxy], mapped, &h), ip("198.51.100.2"));
        assert_eq!(client_address(&[], mapped, &h), proxy);
        // A proxy named in its mapped form is trusted too, and mapped entries are canonical.
        assert_eq!(
            client_address(&[mapped], proxy, &xff("::ffff:198.51.100.2")),
            ip("198.51.100.2")
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a = client_address(&[], ip("2001:db8:1:2:aaaa::1"), &[]);
        let b = client_address(&[], ip("2001:db8:1:2:ffff:1:2:3"), &[]);
        let other = client_address(&[], ip("2001:db8:1:3::1"), &[]);
        assert_eq!(a, b);
        assert_eq!(a, ip("2001:db8:1:2::"));
        assert_ne!(a, other);
        let proxy = ip("10.0.0.1");
        assert_eq!(
            client_address(&[proxy], proxy, &xff("2001:db8:1:2::77")),
            ip("2001:db8:1:2::")
        );
    }

    #[test]
    fn forwarded_for_stops_at_the_first_entry_it_cannot_read() {
        let proxy = ip("10.0.0.1");
        let inner = ip("10.0.0.2");
        // Left of the garbage nothing is believed: the last address read stands.
        let h = xff("203.0.113.9, unknown, 198.51.100.2");
        assert_eq!(client_address(&[proxy], proxy, &h), ip("198.51.100.2"));
        let h = xff("203.0.113.9, garbage, 10.0.0.2");
        assert_eq!(client_address(&[proxy, inner], proxy, &h), inner);
        let h = xff("203.0.113.9, not-an-address");
        assert_eq!(client_address(&[proxy], proxy, &h), proxy);
    }
}
