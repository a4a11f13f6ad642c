# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""``python -m lcoupling.specdec generate``: one speculative decode on a tiny checkpoint.

The target is a 2-layer Llama written as a Hugging Face checkpoint
(``tests/lm_helpers.py``); the drafter is given by spec alone
(``early_exit_linear:1``), so the command builds it from the HumanEval prompts
of the data directory (three of them here) and caches it there.
"""

from __future__ import annotations

import pathlib
import re

import pytest

import lm_helpers
from lcoupling import lm
from lcoupling.lm import distill
from lcoupling.specdec import __main__ as cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
HUMANEVAL = ROOT / "data" / "lm" / "HumanEval.jsonl.gz"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  if not HUMANEVAL.is_file():
    pytest.skip(f"{HUMANEVAL} missing: run `make lm`")
  d = tmp_path_factory.mktemp("specdec_cli")
  tok = lm_helpers.tiny_tokenizer()
  cfg = dict(lm_helpers.hf_config("llama", 320), max_position_embeddings=512)
  lm_helpers.write_hf_checkpoint(d / "model", cfg, lm_helpers.random_hf_weights(cfg, 0), tok)
  (d / "data" / "lm").mkdir(parents=True)
  (d / "data" / "lm" / HUMANEVAL.name).symlink_to(HUMANEVAL)
  return d


def _main(argv, capsys):
  code = cli.main(argv)
  out = capsys.readouterr()
  return code, out.out, out.err


def test_generate_prints_text_efficiency_histogram_speed(tiny, capsys, monkeypatch):
  monkeypatch.setattr(distill, "DEFAULT_CORPUS_PROMPTS", 3)
  argv = ["generate", "--target", f"hf:{tiny / 'model'}", "--drafter", "early_exit_linear:1",
          "--scheme", "gls_strong", "--num_drafts", "2", "--draft_length", "2",
          "--prompt", "def add(a, b):", "--max_new_tokens", "8", "--top_k", "16",
          "--data_dir", str(tiny / "data"), "--seed", "3", "--compare"]
  code, out, err = _main(argv, capsys)
  assert code == 0, err
  assert "building drafter early_exit_linear:1 from 3 HumanEval prompts" in err
  built = list((tiny / "data" / "drafters").glob("*/early_exit_linear_1/drafter.json"))
  assert len(built) == 1  # cached under the data directory
  assert re.search(r"^scheme gls_strong, K = 2, L = 2, drafter early_exit_linear:1; prompt \d+ "
                   r"tokens, seed 3$", out, re.M), out
  m = re.search(r"^block efficiency: ([0-9.]+) tokens per target call \((\d+) tokens, (\d+) "
                r"target calls\)$", out, re.M)
  assert m, out
  eff, n, calls = float(m[1]), int(m[2]), int(m[3])
  assert 1.0 <= eff <= 3.0 and eff == pytest.approx(n / calls, abs=1e-3) and 1 <= n <= 8
  hist = re.search(r"^accepted lengths: 0: (\d+), 1: (\d+), 2: (\d+) ", out, re.M)
  assert hist, out
  assert sum(map(int, hist.groups())) == calls  # one block per target call
  assert re.search(rf"^speed: {n} tokens in \d+ ms = [0-9.]+ tokens/s \(compilation [0-9.]+ s, "
                   r"not included\)$", out, re.M), out
  # gls_strong with the same key and K is autoregressive sampling token for token
  assert re.search(r"^autoregressive \(same key\): .* tokens/s .*; same text: yes$", out, re.M)
  # the cached drafter is reused: no second build
  llm = lm.load(f"hf:{tiny / 'model'}")
  distill.load_drafter("early_exit_linear:1", llm, data_dir=tiny / "data")
  assert "building drafter" not in capsys.readouterr().err


@pytest.mark.parametrize("extra, code, match", [
    (["--scheme", "medusa"], 2, r"--scheme: unknown scheme 'medusa'; known: autoregressive"),
    (["--num_drafts", "0"], 2, "--num_drafts must be >= 1, got 0"),
    (["--draft_length", "0"], 2, "--draft_length must be >= 1"),
    (["--scheme", "sps"], 2, "--scheme sps is a single-draft scheme: use --num_drafts 1"),
    (["--temperature", "-1"], 2, "--temperature must be a finite number > 0"),
    (["--temperature", "0"], 2, "--temperature must be a finite number > 0"),
    (["--top_k", "-1"], 2, "--top_k must be an int >= 0"),
    (["--drafter", "early_exit_linear"], 2, "--drafter: unknown drafter spec"),
    (["--target", "smollm2-135m"], 1, r"not found; run `make lm`"),
])
def test_bad_input_is_one_line(extra, code, match, capsys, tmp_path):
  argv = ["generate", "--prompt", "x", "--num_drafts", "2", "--data_dir", str(tmp_path), *extra]
  got, out, err = _main(argv, capsys)
  assert got == code and out == ""
  assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
  assert re.search(match, err), err


def test_study_drafter_build_says_so_and_is_cached_as_made(tiny, tmp_path, capsys):
  """A study's drafter build prints a status line, is cached at once, and is not redone."""
  import json

  from lcoupling import runner
  from lcoupling.studies import specdec_common as sc
  (tmp_path / "p.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n"
                                            for p in ("def f(x):", "a = 1")))
  exp = runner.load_experiment("specdec_iid:quick", {
      "target": f"hf:{tiny / 'model'}", "prompts": f"jsonl:{tmp_path / 'p.jsonl'}",
      "drafter": "early_exit_linear:1", "drafter_corpus": f"jsonl:{tmp_path / 'p.jsonl'}",
      "drafter_corpus_indices": (), "drafter_cache_dir": str(tmp_path / "drafters")})
  loaded = sc.load_target(exp.config)
  sc.load_drafter(exp.config, loaded, progress=True)  # run_point(..., progress=True)
  assert "building drafter early_exit_linear:1 from the given corpus" in capsys.readouterr().err
  assert list((tmp_path / "drafters").glob("*/early_exit_linear_1/drafter.json"))
  sc._DRAFTERS.clear()  # as a new process (a resumed run) would start
  sc.load_drafter(exp.config, loaded, progress=True)
  assert "building drafter" not in capsys.readouterr().err
  # --noprogress (run_point(..., progress=False)): a build prints nothing, no bar
  exp.config.drafter_cache_dir = str(tmp_path / "quiet")
  sc._DRAFTERS.clear()
  sc.load_drafter(exp.config, loaded, progress=False)
  assert list((tmp_path / "quiet").glob("*/early_exit_linear_1/drafter.json"))
  assert capsys.readouterr().err == ""
