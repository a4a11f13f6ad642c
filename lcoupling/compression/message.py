# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Self-describing codec messages: a versioned header, the packed labels, a checksum.

:func:`lcoupling.compression.encode` returns the bare payload: ``log2 L_max``
bits per source (:func:`~lcoupling.compression.pack_labels`), which is what the
rate of the scheme counts. A payload carries nothing that says how it was made,
so a decoder with another ``L_max``, ``K``, ``N``, scheme or model would
silently decode a wrong codeword. A *message* (:func:`pack_message`) frames the
payload (docs/method.md §5.4)::

    offset  size  field
    0       4     magic b"LCPM"
    4       1     format version (1)
    5       1     scheme (0 = gls, 1 = baseline)
    6       1     log2 L_max (payload bits per source)
    7       1     log2 max_bins (the fine labels, L)
    8       2     num_decoders K
    10      4     num_codewords N
    14      4     count (sources in the payload)
    18      2     length m of the context
    20      m     context: canonical JSON (sorted keys, no spaces) of the
                  application's parameters that decoding depends on
                  (e.g. the study, beta, image index, seed, model fingerprint)
    20+m    P     payload: ceil(count * log2 L_max / 8) bytes
    20+m+P  4     CRC-32 (zlib) of all the bytes before it

all integers big-endian: ``24 + m`` bytes of framing around the payload.
:func:`unpack_message` refuses (:class:`MessageError`, naming the field) a
wrong magic, an unknown version, a checksum mismatch (corruption), a payload
of the wrong length, and -- given the decoder's own :class:`MessageHeader` --
any field or context entry that differs from what the decoder expects.

Example:
  >>> h = MessageHeader("gls", num_decoders=2, num_codewords=256, num_bins=4, max_bins=8,
  ...                   count=3, context={"beta": 0.5})
  >>> msg = pack_message(h, b"\x2c")
  >>> len(msg) - 1 == header_size(h)
  True
  >>> unpack_message(msg, h)[1]
  b','
  >>> unpack_message(msg, dataclasses.replace(h, num_bins=8))
  Traceback (most recent call last):
  ...
  lcoupling.compression.message.MessageError: message field 'num_bins' (L_max) is 4, but the decoder expects 8
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

from lcoupling.compression import codec

__all__ = ["MAGIC", "FORMAT_VERSION", "MessageError", "MessageHeader", "header_size", "pack_message",
           "unpack_message", "encode_message", "decode_message"]

MAGIC = b"LCPM"
FORMAT_VERSION = 1
_FIXED = struct.Struct(">4sBBBBHIIH")  # magic .. context length: 20 bytes
_CRC = struct.Struct(">I")
_SCHEMES = {"gls": 0, "baseline": 1}
_FIELD_NAMES = {"scheme": "", "num_decoders": " (K)", "num_codewords": " (N)",
                "num_bins": " (L_max)", "max_bins": " (L)", "count": " (sources)"}


class MessageError(ValueError):
  """A message that must not be decoded; ``field`` names what is wrong."""

  def __init__(self, field: str, message: str):
    super().__init__(message)
    self.field = field


def _canonical(context: Mapping[str, Any]) -> bytes:
  try:
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
  except (TypeError, ValueError) as e:
    raise TypeError(f"message context must be JSON-able (str keys, finite numbers, str, bool), "
                    f"got {context!r}: {e}") from e


@dataclasses.dataclass(frozen=True)
class MessageHeader:
  """The parameters a decoder must share with the encoder (see the module docstring)."""

  scheme: str
  num_decoders: int
  num_codewords: int
  num_bins: int
  max_bins: int
  count: int
  context: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.scheme not in _SCHEMES:
      raise ValueError(f"scheme must be one of {tuple(_SCHEMES)}, got {self.scheme!r}")
    codec.check_num_bins(self.num_bins, "num_bins", self.max_bins)
    codec.check_num_bins(self.max_bins, "max_bins")
    for name, hi in (("num_decoders", 2**16 - 1), ("num_codewords", 2**32 - 1), ("count", 2**32 - 1)):
      v = getattr(self, name)
      if isinstance(v, bool) or not isinstance(v, int) or not (0 if name == "count" else 1) <= v <= hi:
        raise ValueError(f"{name} must be an int in range for the message header, got {v!r}")
    # Store the context as it reads back (JSON round trip: tuples become lists, ...).
    object.__setattr__(self, "context", json.loads(_canonical(self.context)))

  @classmethod
  def for_spec(cls, spec: codec.CodecSpec, *, num_bins: int, count: int,
               context: Mapping[str, Any] | None = None) -> MessageHeader:
    """The header of ``count`` sources encoded with ``spec`` at ``L_max = num_bins``."""
    return cls(spec.scheme, int(spec.num_decoders), int(spec.num_codewords), int(num_bins),
               int(spec.max_bins), int(count), dict(context or {}))


def header_size(header: MessageHeader) -> int:
  """Bytes of framing (header + checksum) around the payload: ``24 + len(context JSON)``."""
  return _FIXED.size + len(_canonical(header.context)) + _CRC.size


def pack_message(header: MessageHeader, payload: bytes) -> bytes:
  """``header || payload || CRC-32``; the payload length must match the header."""
  want = codec.message_length(header.count, header.num_bins)
  if len(payload) != want:
    raise ValueError(f"payload has {len(payload)} bytes, but {header.count} labels at L_max = "
                     f"{header.num_bins} need {want}")
  ctx = _canonical(header.context)
  if len(ctx) >= 2**16:
    raise ValueError(f"message context too long ({len(ctx)} bytes of JSON, at most 65535)")
  body = _FIXED.pack(MAGIC, FORMAT_VERSION, _SCHEMES[header.scheme],
                     header.num_bins.bit_length() - 1, header.max_bins.bit_length() - 1,
                     header.num_decoders, header.num_codewords, header.count, len(ctx)) + ctx + payload
  return body + _CRC.pack(zlib.crc32(body))


def _fmt(v):
  return repr(v) if isinstance(v, str) else str(v)


def unpack_message(data: bytes, expected: MessageHeader | None = None
                   ) -> tuple[MessageHeader, bytes]:
  """Checks a message and returns ``(header, payload)``.

  Args:
    data: the message bytes.
    expected: the decoder's own parameters; every field and context entry must
      equal the message's (``count`` too).

  Raises:
    MessageError: naming the field: ``magic``, ``version``, ``checksum``,
      ``length``, a header field (``num_bins`` ...) or ``context.NAME``.
  """
  if not isinstance(data, (bytes, bytearray, memoryview)):
    raise TypeError(f"message must be bytes, got {type(data).__name__}")
  data = bytes(data)
  if len(data) < _FIXED.size + _CRC.size or data[:4] != MAGIC:
    raise MessageError("magic", f"not an lcoupling codec message (expected the magic {MAGIC!r} and "
                       f"at least {_FIXED.size + _CRC.size} bytes, got {data[:4]!r}, {len(data)} "
                       f"bytes); bare payloads of compression.encode() carry no header")
  magic, version, scheme, log_bins, log_max, k, n, count, ctx_len = _FIXED.unpack_from(data)
  if version != FORMAT_VERSION:
    raise MessageError("version", f"message format version {version}; this decoder reads version "
                       f"{FORMAT_VERSION}")
  (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
  if zlib.crc32(data[:-_CRC.size]) != crc:
    raise MessageError("checksum", "message checksum (CRC-32) mismatch: the message is corrupt or "
                       "truncated")
  names = {v: s for s, v in _SCHEMES.items()}
  if scheme not in names:
    raise MessageError("scheme", f"message field 'scheme' has the unknown code {scheme}")
  end_ctx = _FIXED.size + ctx_len
  try:
    context = json.loads(data[_FIXED.size:end_ctx].decode())
    header = MessageHeader(names[scheme], k, n, 1 << log_bins, 1 << log_max, count, context)
  except (ValueError, UnicodeDecodeError) as e:
    raise MessageError("context", f"message header is malformed ({e})") from e
  payload = data[end_ctx:-_CRC.size]
  want = codec.message_length(count, header.num_bins)
  if len(payload) != want:
    raise MessageError("length", f"message payload has {len(payload)} bytes, but its header says "
                       f"{count} labels at L_max = {header.num_bins} ({want} bytes)")
  if expected is not None:
    for f, desc in _FIELD_NAMES.items():
      got, want_v = getattr(header, f), getattr(expected, f)
      if got != want_v:
        raise MessageError(f, f"message field '{f}'{desc} is {_fmt(got)}, but the decoder expects "
                           f"{_fmt(want_v)}")
    for name in sorted(set(header.context) | set(expected.context)):
      if name not in header.context or name not in expected.context:
        where = "message" if name not in header.context else "decoder"
        raise MessageError(f"context.{name}", f"message context field '{name}' is missing in the "
                           f"{where}'s parameters")
      if header.context[name] != expected.context[name]:
        raise MessageError(f"context.{name}", f"message context field '{name}' is "
                           f"{_fmt(header.context[name])}, but the decoder expects "
                           f"{_fmt(expected.context[name])}")
  return header, payload


def encode_message(keys, spec: codec.CodecSpec, log_weight_fn, sources, *, num_bins: int,
                   context: Mapping[str, Any] | None = None) -> bytes:
  """:func:`~lcoupling.compression.encode` framed as a message (header, payload, checksum)."""
  payload = codec.encode(keys, spec, log_weight_fn, sources, num_bins=num_bins)
  header = MessageHeader.for_spec(spec, num_bins=num_bins, count=int(keys.shape[0]), context=context)
  return pack_message(header, payload)


def decode_message(keys, spec: codec.CodecSpec, message: bytes, log_weight_fn, side_info, *,
                   num_bins: int, decoder: int = 0, context: Mapping[str, Any] | None = None):
  """Checks ``message`` against this decoder's parameters, then :func:`~lcoupling.compression.decode`."""
  expected = MessageHeader.for_spec(spec, num_bins=num_bins, count=int(keys.shape[0]), context=context)
  _, payload = unpack_message(message, expected)
  return codec.decode(keys, spec, payload, log_weight_fn, side_info, num_bins=num_bins,
                      decoder=decoder)
