"""OIDC bearer tokens against a local issuer's JWKS: what verifies, and each way a token fails."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from dsa110.auth.identity import Forbidden, Role, Unauthenticated
from dsa110.auth.oidc import OidcConfig, OidcVerifier, role_from_claims
from tests.auth.issuer import AUDIENCE, ISSUER, Issuer


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer(tmp_path)


def verifier(jwks: str, **overrides: object) -> OidcVerifier:
    options: dict[str, object] = {"issuer": ISSUER, "audience": AUDIENCE, "jwks": jwks, **overrides}
    return OidcVerifier(OidcConfig(**options))  # type: ignore[arg-type]


async def test_a_valid_token_names_its_subject_and_role(issuer: Issuer) -> None:
    check = verifier(str(issuer.jwks_file))
    who = await check.verify(issuer.token(role="operator", sub="astro-1"))
    assert (who.kind, who.name, who.role) == ("oidc", "oidc:astro-1", Role.OPERATOR)
    ec = await check.verify(issuer.token(role=["viewer", "admin"], algorithm="ES256", kid="ec-1"))
    assert ec.role is Role.ADMIN  # the highest role named wins


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"lifetime_s": -120}, "expired"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.example.org"}, "issuer"),
        ({"kid": "unknown"}, "not in the issuer's JWKS"),
        ({"kid": None}, "names no signing key"),
    ],
)
async def test_tokens_that_fail_a_check_are_unauthenticated(
    issuer: Issuer, change: dict, expected: str
) -> None:
    with pytest.raises(Unauthenticated) as refused:
        await verifier(str(issuer.jwks_file)).verify(issuer.token(**change))
    assert expected in refused.value.message.lower() or expected in refused.value.message
    assert refused.value.code == "UNAUTHENTICATED"


async def test_forged_and_unsigned_tokens_are_refused(issuer: Issuer) -> None:
    check = verifier(str(issuer.jwks_file))
    good = issuer.token()
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = "admin"
    raised = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    public_pem = issuer.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    unsigned = jwt.encode({**claims}, None, algorithm="none", headers={"kid": "rsa-1"})
    for forged in (
        f"{header}.{raised}.{signature}",  # claims changed after signing
        unsigned,  # alg none
        "not.a.token",
        "x" * 100,
    ):
        with pytest.raises(Unauthenticated):
            await check.verify(forged)
    # HS256 "signed" with the public key as the shared secret (algorithm confusion).
    with contextlib.suppress(jwt.exceptions.InvalidKeyError):
        confused = jwt.encode(claims, public_pem, algorithm="HS256", headers={"kid": "rsa-1"})
        with pytest.raises(Unauthenticated):
            await check.verify(confused)
    # An allowed algorithm list never includes shared-secret ones.
    with pytest.raises(ValueError, match="asymmetric"):
        OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks="x", algorithms=("HS256",))


async def test_a_token_without_a_known_role_is_forbidden(issuer: Issuer) -> None:
    check = verifier(str(issuer.jwks_file))
    for role in (None, "superuser", ["guest"], 7):
        with pytest.raises(Forbidden):
            await check.verify(issuer.token(role=role))


def test_the_role_claim_may_be_a_nested_path() -> None:
    claims = {"realm_access": {"roles": ["offline_access", "operator"]}, "roles": "viewer"}
    assert role_from_claims(claims, "realm_access.roles") is Role.OPERATOR
    assert role_from_claims(claims, "roles") is Role.VIEWER
    assert role_from_claims(claims, "realm_access.missing") is None
    assert role_from_claims({"roles": {"admin": True}}, "roles") is None


async def test_key_rotation_is_picked_up_from_the_file(issuer: Issuer, tmp_path: Path) -> None:
    check = verifier(str(issuer.jwks_file))
    await check.verify(issuer.token())
    (tmp_path / "next").mkdir()
    rotated = Issuer(tmp_path / "next")
    issuer.jwks_file.write_text(rotated.jwks_file.read_text())
    os.utime(issuer.jwks_file, (1, 1))  # a different modification time, whatever the clock
    with pytest.raises(Unauthenticated):
        await check.verify(issuer.token())  # the old key is gone
    assert (await check.verify(rotated.token(role="viewer"))).role is Role.VIEWER


@contextlib.contextmanager
def jwks_server(document: bytes) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


async def test_the_jwks_may_be_fetched_from_a_url(issuer: Issuer) -> None:
    with jwks_server(issuer.jwks_file.read_bytes()) as url:
        check = verifier(url)
        who = await check.verify(issuer.token(role="admin"))
        assert who.role is Role.ADMIN
        with pytest.raises(Unauthenticated):
            await check.verify(issuer.token(kid="missing"))
    down = verifier("http://127.0.0.1:9/jwks.json")
    with pytest.raises(Unauthenticated):
        await asyncio.wait_for(down.verify(issuer.token()), 30)
