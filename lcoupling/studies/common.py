# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the studies: mean +- SEM over repeats, table formatting, table printers.

Every study module has a table printer, run as
``python -m lcoupling.studies.NAME WORKDIR_OR_RESULTS_JSON [ARGS ...]``. It is
:func:`study_main` with the study's name and a ``tables(results, *args) -> str``
function::

    def main(argv=None):
      return common.study_main("toy", tables, argv)

    if __name__ == "__main__":
      sys.exit(main())

:func:`study_main` loads the results with :func:`load_study_results`, which
names the file and the right command when the results belong to another study,
and prints one line ``error: ...`` (exit status 1) for a missing or damaged
file instead of a traceback.
"""

from __future__ import annotations

import math
import pathlib
import sys
from collections.abc import Callable

import numpy as np

from lcoupling import cli
from lcoupling import results as results_lib

__all__ = ["mean_sem", "fmt_mean_sem", "records", "rate_series", "rate_table",
           "printed_tables", "check_fields", "check_study", "load_study_results", "study_main"]


def mean_sem(values) -> tuple[float, float | None]:
  """``(mean, standard error of the mean)`` of ``values``; SEM is ``None`` for one value.

  Example:
    >>> m, s = mean_sem([1.0, 2.0, 3.0])
    >>> m, round(s, 6)
    (2.0, 0.57735)
  """
  v = np.asarray(values, np.float64)
  sem = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
  return float(v.mean()), sem


def fmt_mean_sem(mean, sem, digits: int) -> str:
  """``"m ± s"`` with ``digits`` decimals (``"–"`` for a missing mean)."""
  if mean is None:
    return "–"
  return f"{mean:.{digits}f}" + ("" if sem is None else f" ± {sem:.{digits}f}")


def records(results) -> list[dict]:
  """The records of a loaded ``results.json`` dict (or a list of records, passed through)."""
  return results["records"] if isinstance(results, dict) else list(results)


def rate_series(cells, scheme: str, k: int, field: str):
  """``(rate_bits, mean, sem)`` arrays of ``field`` for one scheme and K, sorted by ``L_max``.

  A missing value is NaN, a missing SEM 0 (ready for ``errorbar``).
  """
  rs = sorted((r for r in cells if r["scheme"] == scheme and r["K"] == k), key=lambda r: r["L_max"])
  x = np.array([r["rate_bits"] for r in rs], float)
  y = np.array([np.nan if r.get(field) is None else r[field] for r in rs], float)
  e = np.array([0.0 if r.get(field + "_sem") is None else r[field + "_sem"] for r in rs], float)
  return x, y, e


def rate_table(cells, field: str, *, schemes=("gls", "baseline"), digits: int = 4,
               anchor: dict | None = None, anchor_digits: int = 4, annotate=None) -> str:
  """Markdown table of ``field``: one row per ``L_max``, one column per scheme × K.

  Args:
    cells: records with ``scheme``, ``K``, ``L_max``, ``field`` and
      ``field + "_sem"`` (at most one per ``(scheme, K, L_max)``).
    field: the record field shown as ``mean ± sem``.
    schemes: the scheme names, in column order (``"gls"`` is shown as GLS,
      any other as BL).
    digits: decimals of the values.
    anchor: ``{L_max: value}`` shown as a ``paper K=1`` column (``None``: no column).
    anchor_digits: decimals of the anchor column.
    annotate: optional ``record -> str`` appended to each value (e.g. the
      selected ``(N, β)``).

  Example:
    >>> cells = [{"scheme": s, "K": 1, "L_max": 4, "mse": 0.5, "mse_sem": 0.01}
    ...          for s in ("gls", "baseline")]
    >>> print(rate_table(cells, "mse", digits=2))
    | L_max | bits | GLS K=1 | BL K=1 |
    |---|---|---|---|
    | 4 | 2 | 0.50 ± 0.01 | 0.50 ± 0.01 |
  """
  ks = sorted({r["K"] for r in cells})
  rates = sorted({r["L_max"] for r in cells})
  cell = {(r["scheme"], r["K"], r["L_max"]): r for r in cells}
  head = ["L_max", "bits"] + (["paper K=1"] if anchor is not None else []) + [
      f"{'GLS' if s == 'gls' else 'BL'} K={k}" for k in ks for s in schemes]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for lm in rates:
    row = [str(lm), f"{math.log2(lm):g}"]
    if anchor is not None:
      row.append(f"{anchor[lm]:.{anchor_digits}f}" if lm in anchor else "–")
    for k in ks:
      for s in schemes:
        r = cell.get((s, k, lm))
        if r is None:
          row.append("–")
          continue
        txt = fmt_mean_sem(r.get(field), r.get(field + "_sem"), digits)
        row.append(txt + (annotate(r) if annotate is not None else ""))
    lines.append("| " + " | ".join(row) + " |")
  return "\n".join(lines)


def printed_tables(results, args, note, body) -> str:
  """What a study's printer prints: ``note(config, first_record)``, a blank line, ``body(results)``.

  ``args`` are the printer's extra command-line arguments (none allowed);
  ``"no records yet"`` before the first point is done.
  """
  if args:
    raise ValueError(f"unexpected arguments {list(args)}: the printer takes only the results")
  recs = records(results)
  if not recs:
    return "no records yet"
  return note(results["meta"]["config"], recs[0]) + "\n\n" + body(results)


def check_fields(results, fields, kind: str = "cell") -> None:
  """``ValueError`` naming a field that no record (of ``kind``) has, with the fields there are.

  Example:
    >>> check_fields({"records": [{"kind": "cell", "mse": 0.1}]}, ["mse", "mse_bset"])
    Traceback (most recent call last):
    ...
    ValueError: no record has the field 'mse_bset'; the records have: kind, mse
  """
  recs = [r for r in records(results) if r.get("kind", "cell") == kind]
  have = sorted({k for r in recs for k in r})
  for f in fields:
    if f not in have:
      raise ValueError(f"no record has the field {f!r}; the records have: {', '.join(have)}")


def _names(study) -> tuple[str, ...]:
  return (study,) if isinstance(study, str) else tuple(study)


def _printer(study: str) -> str:
  """The module whose ``python -m`` prints the results of ``study`` (its registry entry)."""
  from lcoupling import studies  # noqa: PLC0415

  return studies.STUDIES.get(study, f"lcoupling.studies.{study}")


def check_study(results: dict, study, path) -> dict:
  """``results`` if ``meta.study`` is ``study`` (a name or a tuple of names); else ``ValueError``.

  The error names the file (``path``: the work directory or ``results.json``),
  the study the results belong to and the command that prints them.

  Example:
    >>> check_study({"meta": {"study": "toy"}}, ("mnist", "cifar10"), "runs/toy_quick")
    Traceback (most recent call last):
    ...
    ValueError: runs/toy_quick/results.json holds results of the 'toy' study, not 'mnist' or
    'cifar10': print them with python -m lcoupling.studies.toy runs/toy_quick
  """
  names = _names(study)
  got = (results.get("meta") or {}).get("study") if isinstance(results, dict) else None
  if got not in names:
    p = pathlib.Path(path)
    file = p if p.suffix == ".json" and not p.is_dir() else p / "results.json"
    hint = f": print them with python -m {_printer(got)} {path}" if got else ""
    want = " or ".join(repr(n) for n in names)
    raise ValueError(f"{file} holds results of the {got!r} study, not {want}{hint}")
  return results


def load_study_results(path, study) -> dict:
  """Loads ``results.json`` (a work directory or the file) and checks it belongs to ``study``.

  ``study`` is a study name or a tuple of names (a printer shared by several,
  e.g. the image study's ``("mnist", "cifar10")``). Raises
  ``FileNotFoundError`` / ``ValueError`` naming the file: missing, not JSON
  (truncated), not a results file, or the results of another study (with the
  command that prints those, :func:`check_study`).
  """
  return check_study(results_lib.load_results(path), study, path)


def study_main(study, tables: Callable[..., str], argv=None, *, prog: str | None = None) -> int:
  """``python -m lcoupling.studies.STUDY WORKDIR_OR_RESULTS_JSON [ARGS ...]``: prints the tables.

  Args:
    study: the study name (``meta.study`` of the results), or a tuple of the
      names this printer accepts.
    tables: ``tables(results, *args) -> str``, the markdown tables of a loaded
      ``results.json`` (``args`` are the command's extra arguments, e.g. fields);
      ``ValueError`` for bad arguments.
    argv: the arguments after the program name (default ``sys.argv[1:]``).
    prog: the module named in the usage line (default: the first study's
      registered module).

  Returns:
    The exit status: 0, 1 (error, printed as one line naming the file) or 2
    (usage).
  """
  argv = sys.argv[1:] if argv is None else list(argv)
  prog = prog or _printer(_names(study)[0])
  usage = (f"usage: python -m {prog} WORKDIR_OR_RESULTS_JSON [ARGS ...]\n"
           f"{(tables.__doc__ or '').strip()}")
  if not argv or argv[0] in ("-h", "--help"):
    print(usage, file=sys.stderr if not argv else sys.stdout)
    return 2 if not argv else 0
  try:
    res = load_study_results(argv[0], study)
    text = tables(res, *argv[1:])
  except (ValueError, OSError) as e:
    return cli.error(e)
  print(text)
  return 0
