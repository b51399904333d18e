//! Who the client is behind a reverse proxy.
//!
//! Behind a proxy every connection comes from the proxy's address, so per-address limits
//! (requests per second, connections, WebSockets, login attempts) would treat a whole site
//! as one client. The operator names the proxies it runs ([`TrustedProxies`]); their
//! `Forwarded` (RFC 7239) or `X-Forwarded-For` header is believed, and nobody else's: a
//! client that sends the header itself, directly, is still known by its own address.

use std::net::IpAddr;
use std::str::FromStr;

use hyper::HeaderMap;
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed: addresses and CIDR ranges.
///
/// ```
/// use chat_server::proxies::TrustedProxies;
///
/// let proxies: TrustedProxies = "10.0.0.0/8, 127.0.0.1".parse().unwrap();
/// assert!(proxies.contains("10.1.2.3".parse().unwrap()));
/// assert!(!proxies.contains("192.0.2.1".parse().unwrap()));
/// assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// No proxy is trusted: every client is known by its connection's address.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request that came over a connection from `peer`.
    ///
    /// Only when `peer` is a trusted proxy are the forwarding headers read: `Forwarded`
    /// when present, else `X-Forwarded-For`. Their hops are walked from the nearest back,
    /// and the first one that is not a trusted proxy is the client (the hops before it
    /// were written by the client itself and prove nothing). A hop that does not parse
    /// (`unknown`, an obfuscated name, garbage) stops the walk at the last proxy that
    /// was trusted: such clients share that proxy's limits rather than choose their own.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if self.0.is_empty() || !self.contains(peer) {
            return peer;
        }
        let hops: Vec<Option<IpAddr>> = if headers.contains_key(hyper::header::FORWARDED) {
            headers
                .get_all(hyper::header::FORWARDED)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(forwarded_for)
                .collect()
        } else {
            headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|hop| parse_hop(hop.trim()))
                .collect()
        };
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            match hop {
                Some(ip) => {
                    client = ip;
                    if !self.contains(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`, what a dual-stack listener
/// reports) is the IPv4 address: limits and the proxy list see one form.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The `for=` of one `Forwarded` element (`for=192.0.2.60;proto=http`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_hop(value.trim().trim_matches('"')))
            .flatten()
    })
}

/// One hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(canonical(ip));
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (ip, _) = rest.split_once(']')?;
        return IpAddr::from_str(ip).ok().map(canonical);
    }
    let (ip, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    std::net::Ipv4Addr::from_str(ip).ok().map(IpAddr::V4)
}

/// A list of addresses and CIDR ranges, separated by commas or spaces; a bare address is
/// a range of one.
impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let net = match IpNet::from_str(item) {
                Ok(net) => net,
                Err(_) => IpAddr::from_str(item)
                    .map(IpNet::from)
                    .map_err(|_| format!("{item:?} is neither an IP address nor a CIDR range"))?,
            };
            nets.push(net.trunc());
        }
        Ok(Self(nets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(proxies.client_ip(ip("192.0.2.9"), &h), ip("192.0.2.9"));
        // Nobody trusted: headers are never read.
        assert_eq!(
            TrustedProxies::none().client_ip(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_first_untrusted_hop_from_the_nearest_back_is_the_client() {
        let proxies: TrustedProxies = "10.0.0.0/8, 172.16.0.1".parse().unwrap();
        // The client wrote a fake first hop; the proxies appended the real one.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 172.16.0.1")]);
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // Split over several header lines, as some proxies do.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_ip(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        // Only proxies on the way: the farthest of them.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 172.16.0.1")]);
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn forwarded_is_preferred_and_its_forms_parse() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            (
                "forwarded",
                "for=192.0.2.43;proto=https, for=\"[2001:db8:cafe::17]:4711\"",
            ),
        ]);
        assert_eq!(
            proxies.client_ip(ip("10.0.0.2"), &h),
            ip("2001:db8:cafe::17")
        );
        let h = headers(&[("forwarded", "For=\"192.0.2.43:8080\";by=10.0.0.2")]);
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &h), ip("192.0.2.43"));
    }

    #[test]
    fn an_unparsable_hop_stops_at_the_last_trusted_proxy() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "198.51.100.7, garbage, 10.0.0.5")]);
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.5"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn mapped_ipv4_is_ipv4_and_bad_lists_are_refused() {
        let proxies: TrustedProxies = "127.0.0.1".parse().unwrap();
        assert!(proxies.contains(ip("::ffff:127.0.0.1")));
        let h = headers(&[("x-forwarded-for", "::ffff:198.51.100.7")]);
        assert_eq!(
            proxies.client_ip(ip("::ffff:127.0.0.1"), &h),
            ip("198.51.100.7")
        );
        assert!("10.0.0.0/8, nonsense".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        // A range with host bits set means the range.
        assert!(
            "10.1.2.3/8"
                .parse::<TrustedProxies>()
                .unwrap()
                .contains(ip("10.200.0.1"))
        );
    }
}
