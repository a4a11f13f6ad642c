# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The results files kept in ``docs/results`` still load, print and match the README.

``docs/results/mnist_paper_h200.json`` is the MNIST paper protocol's results (one
NVIDIA H200; README, "MNIST"): a change of the results schema or of the study's
printer that breaks it fails here, and so does a README table that no longer
says what the file holds.
"""

from __future__ import annotations

import json
import pathlib

from lcoupling.studies import mnist

ROOT = pathlib.Path(__file__).resolve().parent.parent
MNIST_PAPER = ROOT / "docs" / "results" / "mnist_paper_h200.json"
README = ROOT / "README.md"


def _readme_table(after: str) -> list[list[str]]:
  """The rows (cells as strings) of the first markdown table after the line containing ``after``."""
  text = README.read_text(encoding="utf-8")
  lines = text[text.index(after):].splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith("| L_max"))
  rows = []
  for line in lines[start + 2:]:
    if not line.startswith("|"):
      break
    rows.append([c.strip() for c in line.strip("|").split("|")])
  return rows


def test_mnist_paper_protocol_prints(capsys):
  assert mnist.main([str(MNIST_PAPER)]) == 0
  out = capsys.readouterr().out
  assert "mse_best (selected)" in out and "zero-rate references" in out
  assert "| 4 | 2 | 0.1027 | 0.1131 ± 0.0001 (N=128, β=0.95) |" in out  # the printed K = 1 cell


def test_readme_table_is_the_mnist_paper_protocol_file():
  results = json.loads(MNIST_PAPER.read_text(encoding="utf-8"))
  meta = results["meta"]
  assert meta["complete"] and meta["config"]["num_repeats"] == 5 and len(meta["config"]["betas"]) == 5
  cells = {(r["scheme"], r["K"], r["L_max"]): r for r in results["records"]
           if r["kind"] == "cell" and r.get("selected")}
  assert {r["num_test_images"] for r in cells.values()} == {10_000}  # config 0: the whole test set
  rows = _readme_table("**The full paper protocol, on one NVIDIA H200**")
  assert [int(r[0]) for r in rows] == [4, 8, 16, 32, 64]
  for row in rows:
    l_max = int(row[0])
    gls_k1, rest = row[3], row[4:]
    assert row[2] == f"{cells[('gls', 1, l_max)]['paper_mse_k1']:.4f}"  # the paper's K = 1 value
    assert gls_k1 == f"{cells[('gls', 1, l_max)]['mse_best']:.4f}"
    assert cells[("gls", 1, l_max)]["mse_best"] == cells[("baseline", 1, l_max)]["mse_best"]
    for k in (2, 3, 4):
      gls, bl = rest[2 * (k - 2)], rest[2 * (k - 2) + 1]
      assert gls == f"{cells[('gls', k, l_max)]['mse_best']:.4f}", (l_max, k)
      assert bl == f"{cells[('baseline', k, l_max)]['mse_best']:.4f}", (l_max, k)
  assert "N = 128 and β = 0.95 in every cell" in README.read_text(encoding="utf-8")
  assert {(r["N"], r["beta"]) for r in cells.values()} == {(128, 0.95)}
