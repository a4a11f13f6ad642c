# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The toy study: random streams independent of the method list; the table printer."""

import json
import pathlib

import jax
import pytest

from lcoupling import results as results_lib
from lcoupling import runner
from lcoupling.studies import common, toy

TOY = str(pathlib.Path(__file__).resolve().parent.parent / "configs" / "toy.py")
_TINY = {"num_pairs": 3, "num_samples": 256, "chunk_size": 128, "alphabet_size": 4}


def _mc(records, method):
  return [r for r in records if r["method"] == method]


def test_monte_carlo_does_not_depend_on_the_method_list():
  """A method's numbers are the same alone and in any list (keys from a fixed id per method)."""
  key = jax.random.key(0)
  point = {"part": "acceptance", "K": 2}
  both = runner.load_experiment(TOY + ":quick", {**_TINY, "methods": ("gls", "specinfer")})
  alone = runner.load_experiment(TOY + ":quick", {**_TINY, "methods": ("specinfer",)})
  r_both = toy.run_point(key, both.config, point)
  r_alone = toy.run_point(key, alone.config, point)
  assert _mc(r_both, "specinfer") == _mc(r_alone, "specinfer")
  assert _mc(r_alone, "gls") == []


def _results(records, study="toy"):
  return {"schema": results_lib.SCHEMA, "name": "t", "description": "",
          "meta": {"study": study, "config": {}}, "records": records}


_RECORDS = (
    [{"part": "acceptance", "K": k, "method": m, "acceptance": a + 0.01 * k, "mc_stderr": 0.0003}
     for k in (1, 2) for m, a in (("gls", 0.45), ("gls_exact", 0.46), ("lml", 0.44),
                                  ("specinfer", 0.5), ("spectr", 0.52), ("optimum", 0.6))]
    + [{"part": "coupling", "pair": i, "d_tv": d, "gumbel": g, "gumbel_stderr": 0.01,
        "gumbel_exact": g + 0.005, "minhash": g - 0.05, "minhash_stderr": 0.01,
        "minhash_exact": g - 0.05, "daliri_bound": (1 - d) / (1 + d), "maximal": 1 - d,
        "num_samples": 2000}
       for i, (d, g) in enumerate(((0.1, 0.85), (0.5, 0.45), (0.9, 0.06)))])


def test_printer_prints_the_acceptance_and_coupling_tables(tmp_path, capsys):
  (tmp_path / "results.json").write_text(json.dumps(_results(_RECORDS)))
  assert toy.main([str(tmp_path)]) == 0
  out = capsys.readouterr().out
  assert "| K | GLS (MC) | GLS exact | LML | SpecInfer | SpecTr | optimum α* |" in out
  assert "| 2 | 0.4700 ± 0.0003 | 0.480 | 0.460 | 0.520 | 0.540 | 0.620 |" in out
  assert "| 0.4–0.6 | 1 | 0.450 | 0.455 | 0.400 | 0.400 | 0.333 | 0.500 |" in out
  assert "3 pairs, 2000 samples each: exact Gumbel >= exact MinHash on 3/3" in out
  assert "Monte-Carlo within 4 SE of exact: Gumbel 3/3, MinHash 3/3" in out


def test_printer_names_the_file_of_another_study(tmp_path, capsys):
  (tmp_path / "results.json").write_text(json.dumps(_results([], study="gaussian")))
  with pytest.raises(ValueError, match=r"results\.json holds results of the 'gaussian' study, "
                                       r"not 'toy': print them with python -m "
                                       r"lcoupling\.studies\.gaussian"):
    common.load_study_results(tmp_path, "toy")
  assert toy.main([str(tmp_path)]) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: ") and "'gaussian' study" in err and len(err.splitlines()) == 1
  assert toy.main([str(tmp_path / "missing")]) == 1
  assert "not found" in capsys.readouterr().err
  assert toy.main([]) == 2
