"""A local OIDC issuer for tests: signing keys made here, a JWKS file (or URL), tokens."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://login.example.org/realms/dsa110"
AUDIENCE = "dsa110-graph"


@dataclass
class Issuer:
    """RSA and EC signing keys; ``jwks_file`` publishes their public halves."""

    directory: Path
    rsa_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    ec_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        self.publish()

    @property
    def jwks_file(self) -> Path:
        return self.directory / "jwks.json"

    def jwks(self) -> dict[str, Any]:
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa_key.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec_key.public_key()))
        return {
            "keys": [
                {**rsa_jwk, "kid": "rsa-1", "use": "sig", "alg": "RS256"},
                {**ec_jwk, "kid": "ec-1", "use": "sig", "alg": "ES256"},
            ]
        }

    def publish(self) -> None:
        self.jwks_file.write_text(json.dumps(self.jwks()))

    def token(
        self,
        *,
        role: Any = "operator",
        sub: str = "astro-1",
        algorithm: str = "RS256",
        kid: str | None = "rsa-1",
        lifetime_s: float = 300.0,
        role_claim: str = "roles",
        **claims: Any,
    ) -> str:
        now = time.time()
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": int(now),
            "exp": int(now + lifetime_s),
            **claims,
        }
        if role is not None:
            body[role_claim] = role
        key = self.ec_key if algorithm.startswith("ES") else self.rsa_key
        headers = {"kid": kid} if kid is not None else {}
        return jwt.encode(body, key, algorithm=algorithm, headers=headers)
