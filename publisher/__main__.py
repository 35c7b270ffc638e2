"""``python -m publisher``: the same program as the ``publisher`` command."""

from publisher.cli import run

if __name__ == "__main__":
    run()
