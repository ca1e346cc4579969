//! Header rules of the forwarding stage: hop-by-hop headers stay on their hop (RFC 9110
//! §7.6.1) and CHP's `xfwd` option adds `X-Forwarded-*`.
//!
//! CHP (node-http-proxy) appends to `X-Forwarded-Proto` and `X-Forwarded-Port` as well;
//! we keep an existing value instead, so a TLS terminator in front of the node still
//! decides the scheme the single-user server sees (Tornado reads the last list element).

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::Authority;

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";
const X_FORWARDED_PORT: &str = "x-forwarded-port";
const KEEP_ALIVE: &str = "keep-alive";

/// Whether a request asks to switch protocols: `Upgrade` present and `upgrade` among the
/// `Connection` options.
pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_options(headers).any(|o| o.eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers: `Connection` and every header it names, `Keep-Alive`,
/// `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding` and `Upgrade`. For an upgrade (`upgrade`
/// true) `Upgrade` stays and `Connection` becomes exactly `upgrade`, so the switch reaches
/// the other side.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = connection_options(headers)
        .filter_map(|o| HeaderName::from_bytes(o.as_bytes()).ok())
        .collect();
    for name in named {
        if !(upgrade && name == header::UPGRADE) {
            headers.remove(&name);
        }
    }
    headers.remove(header::CONNECTION);
    headers.remove(KEEP_ALIVE);
    headers.remove(header::TE);
    headers.remove(header::TRAILER);
    headers.remove(header::TRANSFER_ENCODING);
    if headers.keys().any(|k| k.as_str().starts_with("proxy-")) {
        let proxy: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("proxy-"))
            .cloned()
            .collect();
        for name in proxy {
            headers.remove(name);
        }
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Adds CHP's `xfwd` headers: appends the client to `X-Forwarded-For`, and sets
/// `X-Forwarded-Proto` (`http`), `X-Forwarded-Host` (from `Host`) and `X-Forwarded-Port`
/// (from `Host`, else the scheme's default) where they are not set yet.
pub(super) fn add_forwarded(headers: &mut HeaderMap, client: IpAddr) {
    if let Ok(client) = HeaderValue::try_from(client.to_canonical().to_string()) {
        append_to_list(headers, X_FORWARDED_FOR, client);
    }
    let proto = headers
        .entry(X_FORWARDED_PROTO)
        .or_insert_with(|| HeaderValue::from_static("http"));
    let https = proto.as_bytes().eq_ignore_ascii_case(b"https");
    let host = headers.get(header::HOST).cloned();
    if let Some(host) = &host {
        if !headers.contains_key(X_FORWARDED_HOST) {
            headers.insert(X_FORWARDED_HOST, host.clone());
        }
    }
    if !headers.contains_key(X_FORWARDED_PORT) {
        let port = host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<Authority>().ok())
            .and_then(|a| a.port_u16())
            .unwrap_or(if https { 443 } else { 80 });
        headers.insert(X_FORWARDED_PORT, HeaderValue::from(port));
    }
}

/// `Connection` options, across every `Connection` line.
fn connection_options(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|o| !o.is_empty())
}

/// Appends `value` to a comma-separated list header, joining its lines into one.
fn append_to_list(headers: &mut HeaderMap, name: &'static str, value: HeaderValue) {
    if !headers.contains_key(name) {
        headers.insert(name, value);
        return;
    }
    let mut joined = Vec::with_capacity(64);
    for line in headers.get_all(name) {
        joined.extend_from_slice(line.as_bytes());
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(value.as_bytes());
    let joined = HeaderValue::from_bytes(&joined).unwrap_or(value);
    headers.insert(name, joined);
}

#[cfg(test)]
mod unit {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn strips_hop_by_hop_and_named_headers() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("proxy-authorization", "basic x"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-end-to-end", "1"),
            ("content-length", "3"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-length", "x-end-to-end"]);
    }

    #[test]
    fn keeps_upgrade_on_upgrade() {
        let mut h = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("keep-alive", "timeout=5"),
            ("sec-websocket-key", "abc"),
        ]);
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["sec-websocket-key"], "abc");
        assert!(!h.contains_key("keep-alive"));
    }

    #[test]
    fn upgrade_needs_both_headers() {
        assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
        assert!(!is_upgrade(&map(&[("connection", "upgrade")])));
        assert!(is_upgrade(&map(&[
            ("connection", "close"),
            ("connection", "UPGRADE"),
            ("upgrade", "h2c")
        ])));
    }

    #[test]
    fn adds_forwarded_headers() {
        let mut h = map(&[("host", "hub.example.org:8443")]);
        add_forwarded(&mut h, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
        assert_eq!(h["x-forwarded-for"], "10.0.0.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "hub.example.org:8443");
        assert_eq!(h["x-forwarded-port"], "8443");
    }

    #[test]
    fn keeps_and_appends_existing_forwarded_headers() {
        let mut h = map(&[
            ("host", "hub.example.org"),
            ("x-forwarded-for", "203.0.113.1"),
            ("x-forwarded-for", "198.51.100.2"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "public.example.org"),
        ]);
        let mapped = Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped();
        add_forwarded(&mut h, IpAddr::V6(mapped));
        assert_eq!(h["x-forwarded-for"], "203.0.113.1, 198.51.100.2, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "public.example.org");
        assert_eq!(h["x-forwarded-port"], "443");
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(h["x-forwarded-for"], "::1");
        assert_eq!(h["x-forwarded-port"], "80");
        assert!(!h.contains_key("x-forwarded-host"));
    }
}
