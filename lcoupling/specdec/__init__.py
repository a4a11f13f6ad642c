# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Sequence-level multi-draft speculative decoding with an exact output distribution.

::

    lcoupling.specdec.generate          # every scheme, one jit/vmap-able function (engine.py)
    lcoupling.specdec.verify_block      # one block's verification walk, as a pure function
    lcoupling.specdec.metrics           # block efficiency, acceptance statistics, timed_generate

Command line: ``python -m lcoupling.specdec generate`` (``__main__.py``).
"""

from lcoupling.specdec import metrics
from lcoupling.specdec.engine import (PAD_ID, SCHEMES, Block, Generation, Support, generate,
                                      support, verify_block)

__all__ = ["generate", "verify_block", "support", "Generation", "Support", "Block", "SCHEMES",
           "PAD_ID", "metrics"]
