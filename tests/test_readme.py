# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The README's Python blocks marked ``<!-- test: run -->`` run as written.

Each marked block is executed in a fresh namespace from a scratch directory
whose ``data/lm`` links to this checkout's offline assets (so a drafter the
README builds is cached in the scratch directory, not in ``data/``). Sizes are
made small by the textual replacements in :data:`SMALL` (each must apply, so a
README edit that drops one is noticed), a 2-prompt drafter corpus and, in the
speculative-decoding block, the target's first :data:`TARGET_LAYERS` blocks.
"""

from __future__ import annotations

import functools
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ASSETS = ROOT / "data" / "lm"
MARK = re.compile(r"<!-- test: run -->\n```python\n(.*?)```", re.S)

#: (old, new) replacements applied to the blocks that contain ``old``: small sizes for a CPU.
SMALL = (("max_new_tokens=32", "max_new_tokens=4"), ("num_drafts=4", "num_drafts=2"),
         ("jax.random.key(0), 4)", "jax.random.key(0), 2)"))
#: The speculative-decoding block runs SmolLM2 cut to its first blocks (its early-exit drafter
#: uses 4 of them): it checks that the code runs and prints, and compiles 4x faster.
TARGET_LAYERS = 8


def _first_layers(load, num_layers, *args, **kwargs):
  """``load(...)`` with the model cut to its first ``num_layers`` transformer blocks."""
  from lcoupling.lm import build_llama
  full = load(*args, **kwargs)
  m, config = full.model, full.config.replace(num_layers=num_layers)
  params = {name: w[:num_layers] for name, w in m.layer_params().items()}
  params.update(embed=m.embed[...], final_norm=m.final_norm[...])
  if not config.tie_embeddings:
    params["lm_head"] = m.lm_head[...]
  return full._replace(model=build_llama(config, params), config=config)


def _blocks() -> list[str]:
  return MARK.findall(README.read_text(encoding="utf-8"))


def test_readme_marks_the_python_blocks():
  blocks = _blocks()
  assert len(blocks) >= 3
  assert any("lm.sample(" in b for b in blocks) and any("specdec.generate(" in b for b in blocks)
  for old, _ in SMALL:
    assert any(old in b for b in blocks), f"README no longer contains {old!r}: update SMALL"


def _needs_lm(block: str) -> bool:
  return "lm.load(" in block


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_block_runs(index, tmp_path, monkeypatch, capsys):
  block = _blocks()[index]
  if _needs_lm(block):
    if not (ASSETS / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file():
      pytest.skip(f"{ASSETS} has no SmolLM2: run `make lm`")
    (tmp_path / "data" / "lm").mkdir(parents=True)
    for f in ASSETS.iterdir():
      (tmp_path / "data" / "lm" / f.name).symlink_to(f)
  from lcoupling import lm
  from lcoupling.lm import distill
  monkeypatch.setattr(distill, "DEFAULT_CORPUS_PROMPTS", 2)
  if "specdec.generate(" in block:  # its output is not checked: a shallower target compiles faster
    monkeypatch.setattr(lm, "load", functools.partial(_first_layers, lm.load, TARGET_LAYERS))
  for old, new in SMALL:
    block = block.replace(old, new)
  monkeypatch.chdir(tmp_path)
  exec(compile(block, f"README.md block {index}", "exec"), {"__name__": "__readme__"})
  out = capsys.readouterr().out
  if "lm.sample(" in block:
    assert "Paris" in out or "capital" in out.lower()
  if "specdec.generate(" in block:
    assert list((tmp_path / "data" / "drafters").glob("*/early_exit_linear_4/drafter.json"))
    assert "block_efficiency" in out
  assert os.getcwd() == str(tmp_path)


def test_one_install_address_in_readme_and_notebook():
  nb = (ROOT / "notebooks" / "quickstart.ipynb").read_text(encoding="utf-8")
  readme = README.read_text(encoding="utf-8")
  addresses = set(re.findall(r"git\+https://github\.com/[\w.-]+/[\w.-]+", readme + nb))
  assert len(addresses) == 1, addresses
  (address,) = addresses
  assert f"pip install {address}" in readme and f'"{address}"' in nb.replace('\\"', '"')
