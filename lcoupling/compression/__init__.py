# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Lossy compression with side information at ``K`` decoders (GLS and baseline).

See :mod:`lcoupling.compression.codec` for the scheme. Everything public there
is re-exported here.
"""

from lcoupling.compression.codec import *  # noqa: F401,F403
from lcoupling.compression.codec import __all__ as _codec_all
from lcoupling.compression.codec import message_length  # noqa: F401

__all__ = list(_codec_all) + ["message_length"]
