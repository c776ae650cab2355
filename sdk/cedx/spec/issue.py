"""One finding of validation: what a problem+json ``errors[]`` item carries. A module of its
own so that the runtime's error types need neither the validator nor the rule engine. A
NamedTuple, not a dataclass: importing the client stays clear of dataclasses and inspect
(issue 14, target 4)."""

from __future__ import annotations

from typing import Any, NamedTuple


class Issue(NamedTuple):
    path: str
    code: str
    message: str
    rule: str | None = None

    def as_problem_item(self) -> dict[str, Any]:
        item = {"path": self.path, "code": self.code, "message": self.message}
        if self.rule:
            item["rule"] = self.rule
        return item
