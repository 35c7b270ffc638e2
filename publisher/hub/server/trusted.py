"""Trusted publishing: a CI job's OIDC ID token exchanged for a short-lived token scoped to one repo.

The same exchange as the Hub's (``POST /oauth/token``, RFC 8693 token exchange; see
huggingface/hub-docs ``docs/hub/trusted-publishers.md``): the ID token must be an RS256 JWT
signed by a configured issuer's key, for the configured audience (the Hub's is
``https://huggingface.co``), unexpired, and its claims must equal, exactly, those of a
publisher configured for the requested repo. The answer is a bearer token that can read
and write that one repo for an hour and nothing else; commits are attributed to ``[OIDC]``.

Configuration (``publisher hub trust``) lives in ``ROOT/trusted-publishers.json``::

    {"issuers": {"https://token.actions.githubusercontent.com":
                    {"audience": "https://huggingface.co", "public_keys": ["-----BEGIN PUBLIC KEY-----…"]}},
     "publishers": [{"repo": "acme/model", "type": "model", "issuer": "https://token.actions…",
                     "claims": {"repository": "acme/training", "workflow_ref": "…"}}]}

Issued tokens are ``hf_jwt_`` + a payload signed with a key derived from the server's secret,
so they need no storage and stop working when they expire (or when the secret changes).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from publisher.hub.ids import InvalidName, split_repo_id
from publisher.hub.server import schemas
from publisher.hub.server.atomic import write_atomic
from publisher.hub.server.auth import Identity
from publisher.hub.server.errors import ApiError
from publisher.hub.server.http import Request, Response, Router, header_safe
from publisher.hub.server.lfs import TicketSigner
from publisher.hub.server.objects import REPO_TYPES, RepoKey

if TYPE_CHECKING:
    from publisher.hub.server.app import HubApp

CONFIG = "trusted-publishers.json"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
HUB_AUDIENCE = "https://huggingface.co"
TOKEN_PREFIX = "hf_jwt_"
TTL_S = 3600
OIDC_USER = "[OIDC]"
RESOURCE_PREFIXES = {"datasets/": "dataset", "spaces/": "space"}


class OAuthError(ApiError):
    """An RFC 6749 error body (``{"error": "invalid_grant", "error_description": …}``), status 400."""

    status = 400

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.oauth_error = error


@dataclass
class TrustConfig:
    issuers: dict[str, dict[str, Any]] = field(default_factory=dict)
    publishers: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path) -> TrustConfig:
        try:
            data = json.loads((root / CONFIG).read_text())
        except FileNotFoundError:
            return cls()
        return cls(dict(data.get("issuers", {})), list(data.get("publishers", [])))

    def save(self, root: Path) -> None:
        text = json.dumps({"issuers": self.issuers, "publishers": self.publishers}, indent=2) + "\n"
        write_atomic(root / CONFIG, text.encode())

    def trust(self, key: RepoKey, issuer: str, claims: dict[str, str], *, public_key: str | None,
              audience: str = HUB_AUDIENCE) -> None:
        """Add (or update) ``issuer`` with its key, and a publisher for ``key`` matching ``claims``."""
        entry = self.issuers.setdefault(issuer, {"audience": audience, "public_keys": []})
        entry["audience"] = audience
        if public_key is not None and public_key not in entry["public_keys"]:
            entry["public_keys"].append(public_key)
        if not entry["public_keys"]:
            raise ValueError(f"issuer {issuer} has no public key: pass one")
        publisher = {"repo": key.repo_id, "type": key.repo_type, "issuer": issuer, "claims": dict(claims)}
        if publisher not in self.publishers:
            self.publishers.append(publisher)


def parse_resource(resource: str) -> RepoKey:
    rtype = "model"
    for prefix, kind in RESOURCE_PREFIXES.items():
        if resource.startswith(prefix):
            rtype, resource = kind, resource[len(prefix) :]
    try:
        ns, name = split_repo_id(resource)
    except InvalidName as e:
        raise OAuthError("invalid_request", f"resource must be a repo id (namespace/name): {e}") from e
    assert ns is not None
    return RepoKey(rtype, ns, name)


class TrustedPublishing:
    """Verifies ID tokens against ``ROOT/trusted-publishers.json`` and mints repo-scoped tokens."""

    def __init__(self, root: Path, secret: bytes) -> None:
        self.root = root
        self.signer = TicketSigner(hmac.new(secret, b"trusted-publishing", hashlib.sha256).digest(), ttl_s=TTL_S)

    def exchange(self, subject_token: str, resource: str) -> str:
        key = parse_resource(resource)
        config = TrustConfig.load(self.root)
        claims = self._verify(subject_token, config)
        issuer = str(claims["iss"])
        for publisher in config.publishers:
            if (publisher.get("repo") == key.repo_id and publisher.get("type", "model") == key.repo_type
                    and publisher.get("issuer") == issuer
                    and all(claims.get(k) == v for k, v in dict(publisher.get("claims", {})).items())):
                ticket = self.signer.sign({"k": "oidc", "r": [key.repo_type, key.namespace, key.name],
                                           "iss": issuer, "sub": str(claims.get("sub", ""))})
                return TOKEN_PREFIX + ticket
        # as on the Hub, the error does not say which check failed
        raise OAuthError("invalid_grant", f"no trusted publisher of {key.repo_id} matches this token")

    def _verify(self, token: str, config: TrustConfig) -> dict[str, Any]:
        import jwt

        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as e:
            raise OAuthError("invalid_request", f"subject_token is not a JWT: {e}") from e
        issuer = unverified.get("iss") if isinstance(unverified, dict) else None
        entry = config.issuers.get(issuer) if isinstance(issuer, str) else None
        if entry is None:
            raise OAuthError("invalid_grant", "the token's issuer is not trusted by this Hub")
        for pem in entry.get("public_keys", []):
            try:
                claims = jwt.decode(token, pem, algorithms=["RS256"], audience=entry.get("audience", HUB_AUDIENCE),
                                    issuer=issuer, options={"require": ["exp", "iat", "iss", "aud"]}, leeway=30)
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as e:
                raise OAuthError("invalid_grant", f"the ID token was refused: {e}") from e
            return dict(claims)
        raise OAuthError("invalid_grant", "the ID token's signature does not match the issuer's keys")

    def identity(self, token: str) -> Identity | None:
        """The identity of an issued token; None if it is not one, or expired, or forged."""
        claims = self.signer.verify(token[len(TOKEN_PREFIX) :])
        if claims is None or claims.get("k") != "oidc":
            return None
        rtype, ns, name = claims["r"]
        if rtype not in REPO_TYPES:
            return None
        key = RepoKey(rtype, ns, name)
        return Identity(OIDC_USER, "write", (), f"trusted publisher {claims['iss']} {claims['sub']}", repo=key)


def register(app: HubApp, router: Router) -> None:
    def token(req: Request) -> Response:
        raw = req.body.read_all()
        try:
            if "x-www-form-urlencoded" in (req.headers.get("Content-Type") or ""):
                form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
                body = schemas.validate(schemas.TokenExchange, form)
            else:
                body = schemas.validate(schemas.TokenExchange, schemas.load_json(raw))
            if body.grant_type != GRANT_TYPE or body.subject_token_type != ID_TOKEN_TYPE:
                raise OAuthError("invalid_request", f"grant_type must be {GRANT_TYPE} with an id_token subject")
            issued = app.trusted.exchange(body.subject_token, body.resource)
        except OAuthError as e:
            return Response.json({"error": e.oauth_error, "error_description": e.message}, 400,
                                 {"X-Error-Message": header_safe(e.message)})
        except ApiError as e:
            return Response.json({"error": "invalid_request", "error_description": e.message}, 400,
                                 {"X-Error-Message": header_safe(e.message)})
        return Response.json({"access_token": issued, "token_type": "bearer", "expires_in": TTL_S,
                              "issued_token_type": ACCESS_TOKEN_TYPE})

    router.add("POST", "/oauth/token", token)
