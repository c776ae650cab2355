"""The ``cedx`` command. Each concern registers its own subcommands; errors are one line.

Exit status: 0 success / valid, 1 a verification found the input invalid, 2 usage or I/O error.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from . import example_cmds, hj212_cmds, inspect_cmds, platform_cmds, trust_cmds
from ._help import HELP

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """Raised by a command for a clear one-line failure with an exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE):
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse prints usage + exits 2; keep it to one line
        raise CliError(f"error: {message} (see: {self.prog} --help)", EXIT_USAGE)


#: A missing optional dependency -> the extra that provides it.
EXTRAS = {"fastapi": "server", "uvicorn": "server", "starlette": "server", "sqlalchemy": "server",
          "psycopg": "server", "yaml": "server", "httpx": "async", "tongsuopy": "fast"}


def port(text: str) -> int:
    """An argparse type: a TCP port number (a clear message instead of a crash in the server)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1-65535)")
    return value


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def whole_number(text: str, of: str = "") -> int:
    """``text`` as an int, or the argparse error saying it is not a whole number (``of``: "days"...)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number{' of ' + of if of else ''}") from None


def positive(text: str) -> int:
    """An argparse type: a count of at least one."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def walk(parser: argparse.ArgumentParser) -> Iterator[tuple[argparse.ArgumentParser, argparse.Action]]:
    """Every (parser, action) of the command tree, subcommands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from walk(sub)
        else:
            yield parser, action


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="cedx", description="cedx — carbon emission data exchange toolkit "
                     "(碳排放核算数据交换). Exit status: 0 ok, 1 invalid input found, 2 usage or I/O error.")
    parser.add_argument("--version", action="version", version=f"cedx {__version__}",
                        help="print the version and exit")
    sub: argparse._SubParsersAction[Any] = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    trust_cmds.register(sub)
    platform_cmds.register(sub)
    inspect_cmds.register(sub)
    hj212_cmds.register(sub)  # after platform_cmds: adds `serve hj212-bridge`
    example_cmds.register(sub)
    for p, action in walk(parser):
        if not action.help:
            action.help = HELP.get(f"{p.prog}:{action.dest}") or HELP.get(action.dest)
        if action.dest == "port" and action.type in (None, int):
            action.type = port
        if action.dest == "log_level" and action.choices is None:  # uvicorn's names (a KeyError traceback otherwise)
            action.choices = LOG_LEVELS
        if action.dest == "workers" and action.type in (None, int):
            action.type = positive
    return parser


_python_showwarning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """cedx's own warnings (the portable SM2 backend's hint) as one line, like its errors, not
    with the library's file and source line; other warnings as Python shows them."""
    if not category.__module__.startswith("cedx."):
        _python_showwarning(message, category, filename, lineno, file, line)
        return
    print(f"cedx: warning: {str(message).removeprefix('cedx: ')}", file=file or sys.stderr)


def _one_line(exc: BaseException) -> str:
    """A message for the user: no traceback, no doubled prefix."""
    text = str(exc).strip() or type(exc).__name__
    return text if text.startswith("error:") else f"error: {text}"


def _database_error(exc: BaseException) -> str | None:
    """One line for a database that refuses or cannot be reached (SQLAlchemy is imported only
    by the commands that use a database, so it is looked up rather than imported here)."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None or not isinstance(exc, sa_exc.SQLAlchemyError):
        return None
    cause = getattr(exc, "orig", None) or exc
    # psycopg's own text names the host, port, user and database, never the password.
    text = " ".join(str(cause).split()) or type(cause).__name__
    return f"database: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    from .._exceptions import CedxError, TrustError

    warnings.showwarning = _show_warning
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or EXIT_OK)
    except CliError as exc:  # the command's own one-line message, as it wrote it
        print(f"cedx: {str(exc).strip() or 'error'}", file=sys.stderr)
        return exc.status
    except TrustError as exc:
        print(f"cedx: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        extra = EXTRAS.get(top)
        if extra is None:
            raise
        print(f"cedx: error: this command needs {top}, part of an optional extra: pip install 'cedx[{extra}]'",
              file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `cedx example ... | head`: the reader left; not an error
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (nothing more to say at exit)
        return EXIT_OK
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cedx: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except CedxError as exc:  # transport, refusals, invalid documents: what went wrong, once
        print(f"cedx: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        message = _database_error(exc)
        if message is None:
            raise
        print(f"cedx: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
