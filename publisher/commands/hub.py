"""``publisher hub serve|token``: run the local Hub-compatible server and manage its tokens."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console

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


def _root(args: argparse.Namespace) -> Path:
    if args.root is None:
        raise HubCommandError("no server root", fix="pass --root DIR or set PUBLISHER_HUB_ROOT")
    return Path(args.root)


def run_serve(args: argparse.Namespace) -> int:
    from publisher.hub.server import LocalHub, RootLocked

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        hub = LocalHub(_root(args), args.host, args.port)
        hub.start()
    except RootLocked as e:
        raise OutputError(str(e), fix="stop the other server or use another --root") from e
    except OSError as e:
        raise OutputError(f"cannot listen on {args.host}:{args.port} ({e.strerror})", fix="choose another --port") from e
    console.print(f"local Hub serving {hub.root} at [bold]{hub.url}[/] (Ctrl-C to stop)")
    console.print(f"  export HF_ENDPOINT={hub.url}")
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
