"""``publisher hub serve|token``: run the local Hub-compatible server and manage its tokens."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console

from publisher.commands.common import parse_size
from publisher.errors import OutputError, PublisherError


class HubCommandError(PublisherError):
    """Bad arguments for the local Hub."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("hub", help="the local Hub-compatible server", description=__doc__)
    hub_sub = p.add_subparsers(dest="hub_command", metavar="SUBCOMMAND", required=True)

    def root_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("--root", type=Path, default=os.environ.get("PUBLISHER_HUB_ROOT"),
                       help="the server's data folder (default: $PUBLISHER_HUB_ROOT)")

    serve = hub_sub.add_parser("serve", help="serve ROOT over HTTP (the Hub's API)")
    root_arg(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0: any free port")
    serve.add_argument("--public-url", help="the URL clients reach the server at (upload links are built "
                       "from it; default http://HOST:PORT)")
    serve.add_argument("--max-connections", type=int, default=256,
                       help="connections served at once, one thread each (default 256); more wait, then get 503")
    for way, what in (("down", "file bodies the server sends (downloads)"), ("up", "request bodies it receives (uploads)")):
        serve.add_argument(f"--max-rate-{way}", type=parse_size, metavar="SIZE",
                           help=f"bandwidth limit per second for {what}, shared by all connections, e.g. 60MB "
                           "(benchmarks: a network slower than loopback; default unlimited)")
    serve.set_defaults(func=run_serve)

    token = hub_sub.add_parser("token", help="manage access tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = token_sub.add_parser("create", help="create a token for USER and print it (once)")
    root_arg(create)
    create.add_argument("user")
    create.add_argument("--scope", choices=("read", "write"), default="write")
    create.add_argument("--org", action="append", default=[], help="make USER a member of ORG (repeatable)")
    create.set_defaults(func=run_token_create)
    users = token_sub.add_parser("list", help="list users, their orgs and token names (never the tokens)")
    root_arg(users)
    users.set_defaults(func=run_token_list)

    trust = hub_sub.add_parser("trust", help="let a CI job publish to REPO by trusted publishing (OIDC)",
                               description="Configure a trusted publisher: an OIDC ID token from ISSUER, signed "
                               "by the public key, whose claims equal every --claim, is exchanged at POST "
                               "/oauth/token for a one-hour token that can write REPO only.")
    root_arg(trust)
    trust.add_argument("repo", help="namespace/name (prefix datasets/ or spaces/ for those)")
    trust.add_argument("--issuer", required=True, help="e.g. https://token.actions.githubusercontent.com")
    trust.add_argument("--public-key", type=Path, help="PEM file of the issuer's RS256 public key")
    trust.add_argument("--audience", default="https://huggingface.co", help="the aud the ID token must carry")
    trust.add_argument("--claim", action="append", default=[], metavar="NAME=VALUE",
                       help="a claim the ID token must carry, exactly (repeatable), e.g. repository=acme/training")
    trust.set_defaults(func=run_trust)


def _root(args: argparse.Namespace) -> Path:
    if args.root is None:
        raise HubCommandError("no server root", fix="pass --root DIR or set PUBLISHER_HUB_ROOT")
    return Path(args.root)


def run_serve(args: argparse.Namespace) -> int:
    from publisher.hub.server import LocalHub, RootLocked, Settings

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if args.public_url is not None and not args.public_url.startswith(("http://", "https://")):
        raise HubCommandError(f"--public-url {args.public_url!r} is not an http(s) URL", fix="e.g. --public-url https://hub.example.org")
    if args.max_connections < 1:
        raise HubCommandError("--max-connections must be at least 1")
    for way in ("down", "up"):
        if getattr(args, f"max_rate_{way}") == 0:
            raise HubCommandError(f"--max-rate-{way} must be above 0", fix="omit it for no limit")
    settings = Settings(public_url=args.public_url, max_connections=args.max_connections,
                        max_rate_down=args.max_rate_down, max_rate_up=args.max_rate_up)
    try:
        hub = LocalHub(_root(args), args.host, args.port, settings=settings)
        hub.start()
    except RootLocked as e:
        raise OutputError(str(e), fix="stop the other server or use another --root") from e
    except OSError as e:
        raise OutputError(f"cannot listen on {args.host}:{args.port} ({e.strerror})", fix="choose another --port") from e
    console.print(f"local Hub serving {hub.root} at [bold]{hub.public_url}[/] (Ctrl-C to stop)")
    console.print(f"  export HF_ENDPOINT={hub.public_url}")
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")
    return 0


def run_token_create(args: argparse.Namespace) -> int:
    from publisher.hub.ids import InvalidName
    from publisher.hub.server.auth import TokenStore

    try:
        token = TokenStore(_root(args)).create(args.user, args.scope, orgs=tuple(args.org))
    except (InvalidName, ValueError) as e:
        raise HubCommandError(str(e)) from e
    print(token)
    return 0


def run_token_list(args: argparse.Namespace) -> int:
    from publisher.hub.server.auth import TokenStore

    console = Console(highlight=False)
    for user, orgs in sorted(TokenStore(_root(args)).users().items()):
        console.print(f"{user}" + (f"  orgs: {', '.join(orgs)}" if orgs else ""))
    return 0


def run_trust(args: argparse.Namespace) -> int:
    from publisher.hub.server.trusted import OAuthError, TrustConfig, parse_resource

    root = _root(args)
    try:
        key = parse_resource(args.repo)
    except OAuthError as e:
        raise HubCommandError(e.message, where=args.repo) from e
    claims: dict[str, str] = {}
    for item in args.claim:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise HubCommandError(f"--claim {item!r} is not NAME=VALUE", fix="e.g. --claim repository=acme/training")
        claims[name] = value
    if not claims:
        raise HubCommandError("no --claim: any token of the issuer could publish", fix="add e.g. --claim repository=OWNER/REPO")
    pem = None
    if args.public_key is not None:
        try:
            pem = args.public_key.read_text()
        except OSError as e:
            raise HubCommandError(f"cannot read {args.public_key} ({e.strerror})") from e
        if "BEGIN PUBLIC KEY" not in pem:
            raise HubCommandError("not a PEM public key", where=str(args.public_key))
    config = TrustConfig.load(root)
    try:
        config.trust(key, args.issuer, claims, public_key=pem, audience=args.audience)
    except ValueError as e:
        raise HubCommandError(str(e), fix="pass --public-key FILE") from e
    root.mkdir(parents=True, exist_ok=True)
    config.save(root)
    print(f"trusted publisher for {key.repo_id}: {args.issuer} with {', '.join(f'{k}={v}' for k, v in claims.items())}")
    return 0
