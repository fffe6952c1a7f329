"""Hosts, domains and IP addresses read the way an HTTP client reads them.

A policy that allows or denies by host must see the host the client will connect to, not
the one a lenient parser guesses. `urllib.parse` and a WHATWG client disagree on many
inputs (`https://evil.example\\@github.com/` is `github.com` to `urlsplit` and
`evil.example` to browsers, Node's `fetch` and urllib3), so URLs are parsed with `ada`
(`ada-url`), the WHATWG URL parser Node.js uses: backslashes, userinfo, tabs and newlines,
percent-encoded and full-width host characters, IDNA, IPv4 shorthands (`http://0x7f.1/`
is `127.0.0.1`) and IPv6 all come out as the client sees them.

Two normalisations go beyond WHATWG, both so that a host compares equal to the name a
policy writes: one trailing dot is dropped (`github.com.` is the same DNS name as
`github.com`) and an IPv6 host loses its brackets (`::1`, as `cidr_contains` takes it).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import TYPE_CHECKING

from charter.stdlib.values import describe

if TYPE_CHECKING:
    # `ipaddress` is imported by the functions that read an address: this module is
    # imported with the function table by every policy load, a hook call included, and
    # ipaddress is ~1 ms of a fresh process.
    import ipaddress

    from ada_url import URL

    IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
    IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
_AFTER_PORT = frozenset("/?#\\")
# What WHATWG ignores around a URL (C0 controls and space) and inside it (tab, CR, LF).
_STRIP = "".join(chr(c) for c in range(0x21))


@cache
def _mapped_v4() -> ipaddress.IPv6Network:
    import ipaddress

    return ipaddress.IPv6Network("::ffff:0:0/96")


def _has_scheme(text: str) -> bool:
    """True when `text` starts with a WHATWG scheme and `:`, except `host:port[/...]`:
    WHATWG reads `localhost:8080` as scheme `localhost`, a policy author means a host."""
    head, colon, rest = text.partition(":")
    if not colon or not head[:1].isalpha() or not _SCHEME_CHARS.issuperset(head):
        return False
    digits = len(rest) - len(rest.lstrip("0123456789"))
    is_port = digits > 0 and (digits == len(rest) or rest[digits] in _AFTER_PORT)
    return not is_port


def _parse(text: str) -> URL | None:
    # Imported here, not at the top: the checker imports this module for the functions'
    # signatures, and ada's extension costs ~1 ms of every fresh process (issue 11 cold
    # start). After the first URL this is a dictionary lookup.
    from ada_url import URL

    try:
        return URL(text)
    except ValueError:
        return None


def _host_of(url: URL) -> str:
    host: str = url.hostname
    if host.startswith("["):  # IPv6
        return host[1:-1]
    return host[:-1] if host.endswith(".") and host != "." else host


@lru_cache(maxsize=4096)
def parse_host(text: str) -> str:
    """The host a WHATWG client connects to for `text` (a URL or a bare `host[:port][/...]`).

    Raises ValueError when there is no host: a malformed URL, or one without an authority
    (`mailto:`, `data:`, `javascript:`).
    """
    stripped = text.strip(_STRIP)
    if _has_scheme(stripped):
        url = _parse(stripped)
    else:  # no scheme: a bare host, or a scheme-relative `//host/...`
        prefix = "http:" if stripped.startswith(("//", "\\\\")) else "http://"
        url = _parse(prefix + stripped)
    if url is None:
        raise ValueError(f"expected a URL, found {describe(text)}")
    host = _host_of(url)
    if not host:
        raise ValueError(f"the URL has no host ({describe(text)})")
    return host


def url_host(url: object) -> str:
    """The host a client connects to (WHATWG URL parsing): lower case, IDNA in ASCII
    (`xn--...`), IPv4 in dotted form, IPv6 without brackets, no trailing dot. A bare host
    name (`github.com`, `localhost:8080`) is read as the host it names."""
    if type(url) is not str:
        raise TypeError("expected a string")
    return parse_host(url)


def _has_host(text: str) -> bool:
    url = _parse(text)
    return url is not None and bool(url.hostname)


@lru_cache(maxsize=4096)
def _email_domain(text: str) -> str:
    domain = text.rsplit("@", 1)[1]
    if not domain or any(c in domain for c in "/\\?#:[]%"):
        raise ValueError(f"expected an email address, found {describe(text)}")
    return parse_host(domain)


def domain_of(value: object) -> str:
    """The domain of an email address (after the last `@`, as `url_host` normalises a host)
    or the host of a URL. `mailto:` is read as an email address; anything that parses as a
    URL with an authority (`https:evil.example\\@x`) is a URL, whatever `@` it contains."""
    if type(value) is not str:
        raise TypeError("expected a string")
    text = value.strip(_STRIP)
    if text[:7].lower() == "mailto:":
        text = text[7:]
    elif "@" in text and not (_has_scheme(text) and _has_host(text)):
        return _email_domain(text)
    return parse_host(text)


@lru_cache(maxsize=1024)
def _network(cidr: str) -> IPNetwork:
    import ipaddress

    net = ipaddress.ip_network(cidr.strip("[]"), strict=False)
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_mapped_v4()):
        v4 = ipaddress.IPv4Address(int(net.network_address) & 0xFFFFFFFF)
        return ipaddress.IPv4Network((v4, net.prefixlen - 96))
    return net


@lru_cache(maxsize=8192)
def parse_ip(text: str) -> IPAddress:
    """An IP address as a client reads it: IPv4 in any form `inet_aton` and WHATWG accept
    (`2130706433`, `0x7f.1`, `0177.0.0.1`), IPv6 with or without brackets, and an
    IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as the IPv4 address it reaches."""
    import ipaddress

    stripped = text.strip(_STRIP)
    try:
        address = ipaddress.ip_address(stripped.strip("[]"))
    except ValueError:
        url = _parse(f"http://{stripped}/")
        from ada_url import HostType

        if url is None or url.host_type != HostType.IPV4:
            raise ValueError(f"expected an IP address, found {describe(text)}") from None
        address = ipaddress.IPv4Address(url.hostname)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def cidr_contains(cidr: object, ip: object) -> bool:
    """True when the IP address lies inside the CIDR block. The address is read as a client
    reads it (IPv4 shorthands, brackets); an IPv4-mapped IPv6 address or block
    (`::ffff:0:0/96`) is compared as IPv4."""
    if type(cidr) is not str or type(ip) is not str:
        raise TypeError("expected a string")
    address = parse_ip(ip)
    try:
        network = _network(cidr)
    except ValueError:  # ipaddress quotes the text it rejects; describe it only
        raise ValueError(f"expected a CIDR block, found {describe(cidr)}") from None
    return address in network
