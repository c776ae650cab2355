"""The ``cedx`` command. Each concern registers its own subcommands; errors are one line.

Exit status: 0 success / valid, 1 a verification found the input invalid, 2 usage or I/O error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import hj212_cmds, inspect_cmds, platform_cmds, trust_cmds

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """Raised by a command for a clear one-line failure with an exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE):
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + exits 2; keep it to one line
        raise CliError(f"{self.prog}: {message}", EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cedx", description="cedx — carbon emission data exchange toolkit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    trust_cmds.register(sub)
    platform_cmds.register(sub)
    inspect_cmds.register(sub)
    hj212_cmds.register(sub)  # after platform_cmds: adds `serve hj212-bridge`
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ..trust.errors import TrustError

    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or EXIT_OK)
    except CliError as exc:
        print(f"cedx: {exc}", file=sys.stderr)
        return exc.status
    except TrustError as exc:
        print(f"cedx: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"cedx: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
