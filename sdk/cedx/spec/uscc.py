"""Unified social credit code (统一社会信用代码), GB 32100-2015: check character."""

from __future__ import annotations

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(first17: str) -> str:
    """The 18th character for the first 17 (GB 32100-2015 §4.3)."""
    if len(first17) != 17 or any(c not in CHARSET for c in first17):
        raise ValueError("need 17 characters from the GB 32100 character set")
    total = sum(CHARSET.index(c) * w for c, w in zip(first17, WEIGHTS))
    return CHARSET[(31 - total % 31) % 31]


def is_valid(code: str) -> bool:
    if not isinstance(code, str) or len(code) != 18 or any(c not in CHARSET for c in code):
        return False
    return check_character(code[:17]) == code[17]
