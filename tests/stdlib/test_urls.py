"""Confusing URLs: `url_host`, `domain_of` and `cidr_contains` see the host a client sees.

Each row's expected host is fixed here and, when Node.js is installed, also asked of Node's
WHATWG `URL` (the parser behind `fetch`), so the table cannot drift from a real client.
Node's hostname is compared after the two documented normalisations (one trailing dot
dropped, IPv6 brackets removed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable

import pytest

from charter.stdlib.functions import FUNCTIONS

url_host = FUNCTIONS["url_host"].impl
domain_of = FUNCTIONS["domain_of"].impl
cidr_contains = FUNCTIONS["cidr_contains"].impl

ERROR = None  # no host: a client refuses the URL, our functions raise (a request error)

# (url, host a client connects to, is that host in 127.0.0.0/8 — None when not an IP)
TABLE: list[tuple[str, str | None, bool | None]] = [
    # backslash is a path separator for special schemes, so the `@` after it is path
    ("https://evil.example\\@github.com/", "evil.example", None),
    ("https://github.com\\@evil.example/", "github.com", None),
    ("http://evil.example\\\\github.com", "evil.example", None),
    ("https:\\\\evil.example\\path", "evil.example", None),
    # userinfo: everything up to the last `@` of the authority
    ("https://user:pass@evil.example/", "evil.example", None),
    ("https://github.com@evil.example/", "evil.example", None),
    ("http://a@b@evil.example/", "evil.example", None),
    ("http://evil.example:443@github.com/", "github.com", None),
    ("ftp://user@evil.example/", "evil.example", None),
    # `@` after the authority is path, query or fragment
    ("https://evil.example/@github.com", "evil.example", None),
    ("https://evil.example?@github.com/", "evil.example", None),
    ("https://evil.example#@github.com/", "evil.example", None),
    # IPv4 shorthands and other spellings
    ("http://2130706433/", "127.0.0.1", True),
    ("http://0x7f.1/", "127.0.0.1", True),
    ("http://0177.0.0.1/", "127.0.0.1", True),
    ("http://127.1/", "127.0.0.1", True),
    ("http://0x7f000001/", "127.0.0.1", True),
    ("http://0/", "0.0.0.0", False),
    ("http://127.0.0.1./", "127.0.0.1", True),
    ("http://1.2.3.4.5/", ERROR, None),
    ("http://256.1/", ERROR, None),
    # IPv6, and IPv4 mapped into it (cidr_contains compares those as IPv4)
    ("http://[::1]/", "::1", False),
    ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1", True),
    ("http://[0:0:0:0:0:ffff:7f00:1]:8080/", "::ffff:7f00:1", True),
    ("http://[::1/", ERROR, None),
    # trailing dot, case, ports
    ("http://github.com./", "github.com", None),
    ("HTTPS://GitHub.COM/", "github.com", None),
    ("https://github.com:443/", "github.com", None),
    ("http://github.com:80/x", "github.com", None),
    # tabs, newlines and spaces are removed or trimmed
    ("http://git\thub.com/", "github.com", None),
    ("http://git\nhub.com/", "github.com", None),
    ("  http://github.com/  ", "github.com", None),
    # IDNA and full-width characters; percent-encoding in the host is decoded
    ("http://bücher.de/", "xn--bcher-kva.de", None),
    ("http://xn--bcher-kva.de/", "xn--bcher-kva.de", None),
    ("http://ＧＩＴＨＵＢ.com/", "github.com", None),
    ("http://evil。example/", "evil.example", None),
    ("http://git%68ub.com/", "github.com", None),
    ("http://%65vil.example/", "evil.example", None),
    ("http://github.com%2eevil.example/", "github.com.evil.example", None),
    ("https://evil.example%40github.com/", ERROR, None),
    # special schemes without `//`, one slash, other special schemes
    ("https:github.com", "github.com", None),
    ("https:/evil.example/", "evil.example", None),
    ("ws://evil.example/", "evil.example", None),
    # the path does not change the host
    ("http://github.com/../evil.example", "github.com", None),
    # no authority at all
    ("javascript:alert(1)", ERROR, None),
    ("data:text/html,hi", ERROR, None),
]

# Inputs that are not full URLs; no client reads them, so only the fixed column applies.
BARE: list[tuple[str, str | None, str]] = [  # (input, url_host or ERROR, domain_of)
    ("github.com", "github.com", "github.com"),
    ("GitHub.com.", "github.com", "github.com"),
    ("localhost:8080", "localhost", "localhost"),
    ("github.com:443/path", "github.com", "github.com"),
    ("//evil.example/x", "evil.example", "evil.example"),
    ("alice@Example.COM", "example.com", "example.com"),
    ("mailto:bob@Bücher.de", ERROR, "xn--bcher-kva.de"),
    ("https:evil.example\\@github.com", "evil.example", "evil.example"),
]


def test_table_has_thirty_rows() -> None:
    assert len(TABLE) >= 30


@pytest.mark.parametrize("fn", [url_host, domain_of], ids=["url_host", "domain_of"])
@pytest.mark.parametrize(("url", "host", "loopback"), TABLE)
def test_host_of_each_url(fn: Callable[[object], str], url: str, host: str | None,
                          loopback: bool | None) -> None:
    if host is None:
        with pytest.raises(ValueError):
            fn(url)
        return
    assert fn(url) == host


@pytest.mark.parametrize(("url", "host", "loopback"), TABLE)
def test_cidr_contains_on_the_host(url: str, host: str | None, loopback: bool | None) -> None:
    if host is None:
        return
    if loopback is None:
        with pytest.raises(ValueError):
            cidr_contains("127.0.0.0/8", url_host(url))
        return
    assert cidr_contains("127.0.0.0/8", url_host(url)) is loopback


def _node_hosts(urls: list[str]) -> list[str | None]:
    script = (
        "const urls = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(urls.map(u => { try { return new URL(u).hostname }"
        " catch (e) { return null } })))"
    )
    node = shutil.which("node")
    assert node is not None
    out = subprocess.run([node, "-e", script], input=json.dumps(urls), capture_output=True,
                         text=True, check=True, timeout=60)
    hosts: list[str | None] = json.loads(out.stdout)
    return hosts


def _as_policy_sees(hostname: str | None) -> str | None:
    if not hostname:
        return None
    if hostname.startswith("["):
        return hostname[1:-1]
    return hostname[:-1] if hostname.endswith(".") else hostname


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_table_agrees_with_node() -> None:
    urls = [row[0] for row in TABLE]
    seen = [_as_policy_sees(h) for h in _node_hosts(urls)]
    assert [(u, h) for u, h in zip(urls, seen, strict=True)] == [(u, h) for u, h, _ in TABLE]


@pytest.mark.parametrize(("text", "host", "domain"), BARE)
def test_bare_hosts_and_emails(text: str, host: str | None, domain: str) -> None:
    if host is None:
        with pytest.raises(ValueError):
            url_host(text)
    else:
        assert url_host(text) == host
    assert domain_of(text) == domain


def test_a_policy_denies_the_host_the_client_would_reach() -> None:
    import charter

    policy = charter.compile(
        'allow tool "web.fetch" when url_host(args.url) in {"github.com"}\n'
        'deny tool "web.fetch" when cidr_contains("127.0.0.0/8", url_host(args.url))\n'
    )
    for url in ("https://evil.example\\@github.com/", "http://0x7f.1/admin"):
        decision = policy.decide({"tool": "web.fetch", "args": {"url": url}})
        assert decision.effect == "deny", url
    # a host name is not an address: cidr_contains errs, and the deny rule errs toward deny
    decision = policy.decide({"tool": "web.fetch", "args": {"url": "https://github.com/"}})
    assert decision.effect == "deny"
    assert "request error: cidr_contains" in decision.reasons[0]


@pytest.mark.parametrize(("cidr", "ip", "inside"), [
    ("127.0.0.0/8", "2130706433", True),        # the shorthands a client accepts
    ("127.0.0.0/8", "0x7f.1", True),
    ("10.0.0.0/8", "012.1", True),               # octal 012 is 10
    ("127.0.0.0/8", "::ffff:127.0.0.1", True),   # IPv4-mapped IPv6 reaches the IPv4 host
    ("::ffff:0:0/96", "127.0.0.1", True),        # and a mapped block holds IPv4 addresses
    ("::ffff:127.0.0.0/104", "127.0.0.9", True),
    ("::1/128", "[::1]", True),
    ("127.0.0.0/8", "::1", False),
    ("10.0.0.0/8", "11.0.0.1", False),
])
def test_cidr_contains_reads_addresses_as_clients_do(cidr: str, ip: str, inside: bool) -> None:
    assert cidr_contains(cidr, ip) is inside


@pytest.mark.parametrize("ip", ["localhost", "1.2.3.4.5", "", "github.com"])
def test_cidr_contains_rejects_non_addresses(ip: str) -> None:
    with pytest.raises(ValueError):
        cidr_contains("10.0.0.0/8", ip)
