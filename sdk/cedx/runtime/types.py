"""Value types the generated models use for the spec's Decimal and DateTime schemas.

* ``DecimalString`` holds a ``Decimal``; from JSON it accepts only a decimal string (rule
  R-DEC-001: no binary floats, no exponent), from Python also ``Decimal`` and ``int``; it is
  written back as the same plain string.
* ``NonNegativeDecimalString`` is the same for activity data, parameters and emissions, and
  refuses a negative value (rule R-QTY-001).
* ``Instant`` is an aware datetime; a string must carry an explicit offset (R-TIME-001).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationInfo,
)

from ..instants import INSTANT_PATTERN

DECIMAL_PATTERN = re.compile(r"^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,12})?$")


def _decimal(value: Any, info: ValidationInfo) -> Decimal:
    if isinstance(value, str):
        if not DECIMAL_PATTERN.match(value):
            raise ValueError(f"R-DEC-001: {value!r} is not a plain decimal string")
        return Decimal(value)
    if info.mode == "python" and isinstance(value, (Decimal, int)) and not isinstance(value, bool):
        d = Decimal(value)
        if not d.is_finite():
            raise ValueError("R-DEC-001: decimal must be finite")
        return d
    raise ValueError(f"R-DEC-001: decimals travel as strings, not {type(value).__name__}")


def _non_negative(value: Any, info: ValidationInfo) -> Decimal:
    d = _decimal(value, info)
    if d < 0 or (isinstance(value, str) and value.startswith("-")):
        raise ValueError(f"R-QTY-001: {value!r} is negative; only signed quantities (stock change) may be")
    return d


def _decimal_text(value: Decimal) -> str:
    return format(value, "f")


def _instant(value: Any) -> Any:
    if isinstance(value, str) and not INSTANT_PATTERN.match(value):
        raise ValueError(f"R-TIME-001: {value!r} is not an RFC 3339 instant with an offset")
    return value


DecimalString = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    PlainSerializer(_decimal_text, return_type=str, when_used="json"),
]
NonNegativeDecimalString = Annotated[
    Decimal,
    BeforeValidator(_non_negative),
    PlainSerializer(_decimal_text, return_type=str, when_used="json"),
]
Instant = Annotated[AwareDatetime, BeforeValidator(_instant)]


class SpecModel(BaseModel):
    """Base of the generated models. ``defer_build``: a model's validator and serializer are
    built on its first use rather than at import (importing the client builds none of the 80+
    models; a process uses a few)."""

    model_config = ConfigDict(defer_build=True)
