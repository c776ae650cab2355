"""`cedx example`: the spec's example documents, shipped with the package (a valid start)."""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Traversable


def _examples() -> Traversable:
    return resources.files("cedx.generated").joinpath("examples")


def names() -> list[str]:
    return sorted(p.name.rsplit(".", 1)[0] for p in _examples().iterdir() if p.name.endswith(".json"))


def cmd_example(args: argparse.Namespace) -> int:
    from . import CliError

    if args.list or not args.name:
        print("\n".join(names()))
        return 0
    name = args.name.removesuffix(".json").removesuffix(".xml")
    suffix = ".xml" if args.xml else ".json"
    path = _examples().joinpath(name + suffix)
    if not path.is_file():
        raise CliError(f"error: no example {args.name!r}; choose one of: {', '.join(names())}", 2)
    data = path.read_bytes()
    if args.payload:
        if args.xml:
            raise CliError("error: --payload takes the unsigned payload of a JSON example (drop --xml)", 2)
        doc = json.loads(data)
        if "payload" not in doc:
            raise CliError(f"error: {name} is not a signed envelope; it has no payload", 2)
        data = (json.dumps(doc["payload"], ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    if args.out:
        with open(args.out, "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("example", help="print or save one of the spec's example documents (a valid start)")
    p.add_argument("name", nargs="?", help="example name, e.g. monthly-report-power (none: list them)")
    p.add_argument("--payload", action="store_true",
                   help="only the unsigned payload (what a client signs on send), e.g. a MonthlyReport")
    p.add_argument("--xml", action="store_true", help="the XML form instead of JSON")
    p.add_argument("--list", action="store_true", help="list the example names")
    p.add_argument("-o", "--out", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(func=cmd_example)
