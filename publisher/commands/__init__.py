"""One module per ``publisher`` subcommand, each exposing ``register(subparsers)``."""
