# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Config validation helpers shared by the runner and the studies.

Every check raises ``ValueError`` with a message that names the field as
``config.FIELD`` (nested fields as ``config.train.steps``) and shows the bad
value, e.g. ``config.num_seeds must be an int >= 1, got 0``. Checks that take
``(config, field)`` read the field themselves (a dotted path for nested
fields) and return the checked value.

Example:
  >>> import ml_collections
  >>> c = ml_collections.ConfigDict({"num_seeds": 0, "train": {"steps": 5}})
  >>> check_int(c, "train.steps", 1)
  5
  >>> check_int(c, "num_seeds", 1)
  Traceback (most recent call last):
  ...
  ValueError: config.num_seeds must be an int >= 1, got 0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["need", "is_int", "is_number", "field_value", "check_int", "check_positive",
           "check_int_tuple", "check_choice", "check_names", "check_nonempty_str",
           "check_range"]


def need(cond: bool, message: str) -> None:
  """``ValueError(message)`` unless ``cond``."""
  if not cond:
    raise ValueError(message)


def is_int(value) -> bool:
  """An integer (Python or NumPy), not a bool."""
  return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value) -> bool:
  """A real number (Python or NumPy), not a bool."""
  return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def field_value(config, field: str):
  """``config[field]``; a dotted ``field`` (``"train.steps"``) reads a nested field."""
  value = config
  for part in field.split("."):
    value = value[part]
  return value


def check_int(config, field: str, minimum: int, *, maximum: int | None = None) -> int:
  """``config.FIELD`` is an int ``>= minimum`` (and ``<= maximum`` when given)."""
  v = field_value(config, field)
  if maximum is None:
    need(is_int(v) and v >= minimum, f"config.{field} must be an int >= {minimum}, got {v!r}")
  else:
    need(is_int(v) and minimum <= v <= maximum,
         f"config.{field} must be an int in {minimum}..{maximum}, got {v!r}")
  return int(v)


def check_positive(value, field: str) -> float:
  """``value`` (of ``config.FIELD``) is a finite number ``> 0``."""
  need(is_number(value) and math.isfinite(value) and value > 0,
       f"config.{field} must be a finite number > 0, got {value!r}")
  return float(value)


def check_range(config, field: str, *, minimum: float, strict: bool = False) -> tuple:
  """``config.FIELD`` is a pair ``(lo, hi)`` with ``minimum <= lo < hi`` (``minimum < lo``
  when ``strict``)."""
  v = field_value(config, field)
  op = "<" if strict else "<="
  need(isinstance(v, Sequence) and len(v) == 2 and all(map(is_number, v)),
       f"config.{field} must be a range (lo, hi), got {v!r}")
  lo, hi = v
  need((minimum < lo if strict else minimum <= lo) and lo < hi,
       f"config.{field} must be a range (lo, hi) with {minimum} {op} lo < hi, got {tuple(v)}")
  return tuple(v)


def check_int_tuple(config, field: str, minimum: int, *, allow_empty: bool) -> tuple[int, ...]:
  """``config.FIELD`` is a tuple of distinct ints ``>= minimum`` (non-empty unless
  ``allow_empty``)."""
  v = field_value(config, field)
  need(isinstance(v, (tuple, list)), f"config.{field} must be a tuple of ints, got {v!r}")
  need(allow_empty or len(v) > 0, f"config.{field} must not be empty")
  for x in v:
    need(is_int(x) and x >= minimum, f"config.{field} must hold ints >= {minimum}, got {x!r}")
  need(len(set(v)) == len(v), f"config.{field} has duplicates: {tuple(v)}")
  return tuple(v)


def check_choice(config, field: str, choices: Sequence, *, what: str = "") -> object:
  """``config.FIELD`` is one of ``choices`` (``what``: an optional note, e.g.
  ``" for cifar10"``)."""
  v = field_value(config, field)
  need(v in tuple(choices), f"config.{field} must be one of {tuple(choices)}{what}, got {v!r}")
  return v


def check_names(config, field: str, choices: Sequence, *, refused: str = "") -> tuple:
  """``config.FIELD`` is a non-empty tuple of distinct names from ``choices``.

  With ``refused`` (the advice after the names), names outside ``choices`` read as "not
  allowed" (known names the study refuses) instead of "unknown".
  """
  names = tuple(field_value(config, field))
  need(len(names) > 0, f"config.{field} must not be empty")
  bad = [s for s in names if s not in tuple(choices)]
  need(not bad, f"config.{field}: {bad} not allowed; {refused}" if refused
       else f"config.{field}: unknown {bad}; choose from {tuple(choices)}")
  need(len(set(names)) == len(names), f"config.{field} has duplicates: {names}")
  return names


def check_nonempty_str(config, field: str, what: str = "str") -> str:
  """``config.FIELD`` is a non-empty string (``what`` names it in the message, e.g. ``path``)."""
  v = field_value(config, field)
  need(isinstance(v, str) and bool(v), f"config.{field} must be a non-empty {what}, got {v!r}")
  return v
