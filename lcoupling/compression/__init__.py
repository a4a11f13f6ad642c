# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Lossy compression with side information at ``K`` decoders (GLS and baseline; docs/method.md §5).

:mod:`lcoupling.compression.codec` is the scheme (shared randomness, encoder,
decoders, byte payloads, the nested kernel that evaluates every ``K'`` and rate
on one draw); :mod:`lcoupling.compression.message` frames a payload into a
self-describing message (versioned header + CRC-32). Everything public in both
is re-exported here. :mod:`~lcoupling.compression.vae` and
:mod:`~lcoupling.compression.train` are the learned model of the image studies.
"""

from lcoupling.compression.codec import *  # noqa: F401,F403
from lcoupling.compression.codec import __all__ as _codec_all
from lcoupling.compression.codec import message_length  # noqa: F401
from lcoupling.compression.message import *  # noqa: F401,F403
from lcoupling.compression.message import __all__ as _message_all

__all__ = list(_codec_all) + ["message_length"] + list(_message_all)
