"""Validators: checksums, numbering plans, decoding and entropy."""

from __future__ import annotations

import base64
import json

import pytest

from charter.stdlib import validators as v


@pytest.mark.parametrize(
    "n", ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117",
          "3530111333300000", "30569309025904", "4222222222222"],
)  # fmt: skip
def test_luhn_and_card_accept_test_numbers(n: str) -> None:
    assert v.luhn(n)
    assert v.card_number(n)


def test_card_rejects_luhn_failure_unknown_brand_and_odd_grouping() -> None:
    assert not v.card_number("4111111111111112")
    assert not v.card_number("9111111111111111")  # no brand starts with 9
    assert v.card_number("4111 1111 1111 1111")
    assert not v.card_number("4111 1111-1111 1111")  # mixed separators
    assert not v.card_number("4111 1111 1111 11 11")


def test_iban_mod97_and_length() -> None:
    assert v.iban("DE89370400440532013000")
    assert v.iban("GB82 WEST 1234 5698 7654 32")
    assert not v.iban("DE89370400440532013001")  # checksum
    assert not v.iban("DE8937040044053201300")  # length
    assert not v.iban("XX89370400440532013000")  # country


@pytest.mark.parametrize("s", ["000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567",
                               "123-45-0000", "078-05-1120"])  # fmt: skip
def test_ssn_rejects_never_issued_ranges(s: str) -> None:
    assert not v.ssn(s)


def test_ssn_accepts_issued() -> None:
    assert v.ssn("536-22-1234")


def test_ip_validation() -> None:
    assert v.ip("192.168.1.10") and v.ip("8.8.8.8")
    assert not v.ip("256.1.1.1") and not v.ip("01.2.3.4")
    assert v.ip("2001:db8::1") and v.ip("::ffff:192.0.2.1") and v.ip("fe80::1%eth0")
    assert not v.ip("12:30:45") and not v.ip("::") and not v.ip("00:1a:2b:3c:4d:5e")


@pytest.mark.parametrize(
    "p", ["+1-202-555-0143", "(415) 555-2671", "415.555.2671", "4155552671", "001-415-555-2671",
          "+44 20 7946 0958", "+44(0)113 496 0123", "020 7946 0958", "07700 900123",
          "+49 (0) 30 1234567", "030 12345678", "(06221) 123456", "+33 1 23 45 67 89",
          "01 23 45 67 89", "+91 98765 43210", "98765 43210", "09876543210", "1-800-555-0199",
          "555-555-5555x123"],
)  # fmt: skip
def test_phone_accepts_national_and_international(p: str) -> None:
    assert v.phone(p), p


@pytest.mark.parametrize(
    "p", ["1234567890", "2024-01-15", "978-3-16-148410-0", "0-306-40615-2", "203.45.113.19",
          "0000123456", "+1234", "2 500 000 000", "+74 4171 7471 87"],
)  # fmt: skip
def test_phone_rejects_lookalikes(p: str) -> None:
    assert not v.phone(p), p


def _jwt(header: dict[str, object], payload: dict[str, object], sig: str = "c2ln") -> str:
    enc = [base64.urlsafe_b64encode(json.dumps(x).encode()).rstrip(b"=").decode()
           for x in (header, payload)]  # fmt: skip
    return ".".join([*enc, sig])


def test_jwt_decodes_parts() -> None:
    assert v.jwt(_jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "1"}))
    assert not v.jwt(_jwt({"typ": "JWT"}, {"sub": "1"}))  # no alg
    assert not v.jwt(_jwt({"alg": "HS256"}, {"sub": "1"}, sig=""))  # unsigned, alg not none
    assert v.jwt(_jwt({"alg": "none"}, {"sub": "1"}, sig=""))
    assert not v.jwt("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.sig")  # payload not JSON


def test_entropy_and_generic_values() -> None:
    assert v.shannon_entropy("aaaa") == 0.0
    assert v.shannon_entropy("abcd") == 2.0
    assert v.secret_value("Zx8kLm2PqR7tVw9y")
    for ref in ("${API_KEY}", "$API_KEY", "get_api_key()", 'os.environ["X"]', "settings.key",
                "changeme1", "access_token", "123456789", "<your-key-here>"):  # fmt: skip
        assert not v.secret_value(ref), ref


def test_aws_key_entropy_rejects_filler() -> None:
    assert v.aws_key_id("AKIAJ7Q2ZK4M5N6P3R2T")
    assert not v.aws_key_id("AKIAXXXXXXXXXXXXXXXX")


def test_secret_value_with_brackets_is_not_taken_for_a_call() -> None:
    assert v.secret_value("mPBz80cEDTH71Bv0(7rK2Ou(")
    assert v.secret_value("Xy7(kq9Lm2)Pz")
    assert not v.secret_value("get_api_key()")
    assert not v.secret_value("os.environ[DB_PASSWORD]")
    assert not v.secret_value("vault.read(")
