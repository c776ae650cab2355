"""Typed errors of the HJ 212 codec: one class per kind of malformed packet, each a one-line message."""

from __future__ import annotations


class HJ212Error(ValueError):
    """A packet that cannot be accepted. ``kind`` names the rule that was broken."""

    kind = "packet"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field

    def __str__(self) -> str:  # one line, always
        return " ".join(super().__str__().split())


class FramingError(HJ212Error):
    """Header ``##``, the 4-digit length, the CRC or the CR LF trailer is missing or misplaced."""

    kind = "framing"


class LengthError(HJ212Error):
    """The declared data-segment length differs from the data segment received."""

    kind = "length"

    def __init__(self, message: str, *, declared: int, actual: int):
        super().__init__(message)
        self.declared, self.actual = declared, actual


class CRCError(HJ212Error):
    """The CRC does not match the data segment (HJ 212-2017 Appendix A algorithm)."""

    kind = "crc"

    def __init__(self, message: str, *, received: str, expected: str, modbus: bool):
        super().__init__(message)
        self.received, self.expected, self.modbus = received, expected, modbus


class FieldError(HJ212Error):
    """A field of the data segment is missing, duplicated or not in the standard's format."""

    kind = "field"


class SizeError(HJ212Error):
    """A frame or a multi-package message exceeds the configured bounds."""

    kind = "size"
