"""HJ 212-2017 (and HJ/T 212-2005) codec and the bridge from data loggers to the acquisition source."""

from .codec import (
    FrameReader,
    Packet,
    crc16,
    crc16_modbus,
    crc_hex,
    data_reply,
    decode,
    encode,
    execution_result,
    frame,
    notice_reply,
    parse_segment,
    reassemble,
    reply_for,
    request_reply,
    split,
)
from .errors import CRCError, FieldError, FramingError, HJ212Error, LengthError, SizeError

__all__ = ["CRCError", "FieldError", "FrameReader", "FramingError", "HJ212Error", "LengthError", "Packet",
           "SizeError", "crc16", "crc16_modbus", "crc_hex", "data_reply", "decode", "encode", "execution_result",
           "frame", "notice_reply", "parse_segment", "reassemble", "reply_for", "request_reply", "split"]
