"""Webhook URLs and addresses, signatures, back-off and the Slack formatter, worked out by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import random

import pytest
from standardwebhooks.webhooks import Webhook

from dsa110.webhooks.formats import render, slack_body
from dsa110.webhooks.outbox import backoff
from dsa110.webhooks.signing import new_secret, signed_headers, verify
from dsa110.webhooks.targets import Allowlist, BadWebhookUrl, check_literal, parse_target, resolve_allowed

NOBODY = Allowlist(())


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "gopher://example.org",
        "http://",
        "https://user:pw@example.org/hook",
        "https://example.org/hook#frag",
        "https://example.org/ho ok",
        "https://example.org/\x00",
        "https://example.org:99999/",
        "https://example.org/" + "a" * 3000,
        "",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(BadWebhookUrl):
        parse_target(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.5/hook",
        "http://0.0.0.0/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
    ],
)
def test_internal_addresses_are_refused_by_default(url: str) -> None:
    with pytest.raises(BadWebhookUrl, match="internal"):
        check_literal(parse_target(url), NOBODY)


def test_the_allow_list_opens_named_hosts_and_networks() -> None:
    allow = Allowlist(["127.0.0.1/32", "chat.lan", "10.20.0.0/16", "localhost"])
    check_literal(parse_target("http://127.0.0.1:9000/hook"), allow)
    check_literal(parse_target("http://10.20.3.4/hook"), allow)
    check_literal(parse_target("http://localhost:9000/hook"), allow)
    with pytest.raises(BadWebhookUrl):
        check_literal(parse_target("http://10.21.0.1/hook"), allow)
    assert allow.permits("chat.lan", ipaddress.ip_address("192.168.1.1"))
    assert not allow.permits("other.lan", ipaddress.ip_address("192.168.1.1"))
    check_literal(parse_target("https://hooks.example.org/services/T0/B0/x"), NOBODY)


async def test_names_are_resolved_and_checked_at_delivery() -> None:
    with pytest.raises(BadWebhookUrl, match="internal"):
        await resolve_allowed(parse_target("http://localhost:9/hook"), NOBODY)
    allowed = await resolve_allowed(parse_target("http://localhost:9/hook"), Allowlist(["localhost"]))
    assert allowed.is_loopback
    with pytest.raises(BadWebhookUrl, match="does not resolve"):
        await resolve_allowed(parse_target("http://no-such-host.invalid/hook"), NOBODY)


def test_signature_by_hand_and_with_the_standard_library() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b'{"type":"test"}'
    headers = signed_headers(secret, "alert:7", 1_700_000_000, body)
    expected = base64.b64encode(hmac.new(b"k" * 32, b"alert:7.1700000000." + body, hashlib.sha256).digest())
    assert headers["webhook-signature"] == "v1," + expected.decode()
    assert headers["idempotency-key"] == headers["webhook-id"] == "alert:7"
    assert verify(secret, headers, body) and not verify(secret, headers, body + b" ")
    fresh = new_secret()
    import time

    now_headers = signed_headers(fresh, "alert:8", int(time.time()), body)
    assert Webhook(fresh).verify(body, now_headers) == {"type": "test"}  # the receivers' library agrees


def test_backoff_doubles_caps_and_jitters() -> None:
    rng = random.Random(3)
    delays = [backoff(attempt, 10.0, 3600.0, rng) for attempt in range(1, 12)]
    nominal = [min(3600.0, 10.0 * 2 ** (a - 1)) for a in range(1, 12)]  # 10, 20, 40, ... 3600
    for delay, base in zip(delays, nominal, strict=True):
        assert 0.8 * base <= delay <= 1.2 * base
    assert nominal[:4] == [10.0, 20.0, 40.0, 80.0] and nominal[-1] == 3600.0


def test_slack_message_shape() -> None:
    data = {
        "source_id": "NVSS J123456.7+420312",
        "significance": 7.04,
        "depth": 0.4,
        "start_mjd": 60970.0,
        "end_mjd": 60971.5,
        "severity": "critical",
        "candidate_id": 3,
        "message": "ESE candidate: NVSS J123456.7+420312 dipped 40%",
        "links": {"light curve plot": "https://dsa.example.org/plots/x.png", "bad": "javascript:x"},
    }
    body = slack_body("ese_candidate", data)
    assert body["text"].startswith(":satellite_antenna: New ESE candidate: ESE candidate: NVSS J123456.7")
    fields = [f["text"] for f in body["blocks"][2]["fields"]]
    assert "*Significance*\n7.0 sigma" in fields and "*Depth*\n40%" in fields
    assert "*Window*\nMJD 60970.0-60971.5" in fields
    context = body["blocks"][3]["elements"][0]["text"]
    assert context == "<https://dsa.example.org/plots/x.png|light curve plot>"  # only http(s) links
    standard = json.loads(render("standard", "ese_candidate", "alert:3", "2025-10-24T14:00:00Z", data))
    assert standard == {
        "type": "ese_candidate",
        "id": "alert:3",
        "timestamp": "2025-10-24T14:00:00Z",
        "data": data,
    }
