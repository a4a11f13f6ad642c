# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Drafters (lcoupling.lm.drafters) and their construction (lcoupling.lm.distill), on tiny models."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lcoupling import specdec
from lcoupling.lm import Llama, LlamaConfig, cache as lm_cache, distill, drafters

CFG = LlamaConfig(vocab_size=48, num_layers=3, hidden_size=16, intermediate_size=32, num_heads=4,
                  num_kv_heads=2, head_dim=4, max_position_embeddings=256)


@pytest.fixture(scope="module")
def target():
  """A random Llama with peaked next-token distributions (weights x 20: entropy ~2.9 nats of
  log 48 = 3.9), so that drafters of different quality differ in acceptance."""
  model = Llama(CFG, rngs=nnx.Rngs(0))
  model.embed[...] = model.embed[...] * 20.0
  for layer in model.layers:
    for name in ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"):
      getattr(layer, name)[...] = getattr(layer, name)[...] * 20.0
  return model


def _corpus(n=12, seed=0):
  rng = np.random.default_rng(seed)
  return [rng.integers(0, CFG.vocab_size, rng.integers(5, 30)).tolist() for _ in range(n)]


def _randomise(drafter, seed=1):
  """Non-trivial adapter weights (the constructor starts at the identity)."""
  leaves, treedef = jax.tree.flatten(nnx.state(drafter, drafters.Adapter))
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  leaves = [x + 0.1 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
  nnx.update(drafter, jax.tree.unflatten(treedef, leaves))
  return drafter


@pytest.mark.parametrize("adapter", drafters.ADAPTERS)
def test_early_exit_cache_equals_cache_free(target, adapter):
  drafter = _randomise(drafters.EarlyExit(target, 2, adapter=adapter))
  tokens = jnp.array([[3, 1, 4, 1, 5, 9, 2, 6]])
  full = drafter.logits(tokens)
  cache = drafter.init_cache(2, 16)
  cache = lm_cache.take_rows(cache, jnp.array([0]))  # row ops work on its cache pytree
  _, cache = drafter(tokens[:, :5], cache, jnp.array([0]))
  last, _ = drafter(tokens[:, 5:], cache, jnp.array([5]))
  np.testing.assert_allclose(last[0], full[0, 5:], atol=2e-5)


def test_early_exit_at_init_is_the_truncated_target(target):
  """Identity adapter: the drafter is the target's first m blocks + final norm + head."""
  tokens = jnp.array([[7, 8, 9, 10]])
  m = 2
  drafter = drafters.EarlyExit(target, m, adapter="block")
  params = {k: v[:m] for k, v in target.layer_params().items()}
  ref = Llama(CFG.replace(num_layers=m), rngs=nnx.Rngs(0))
  for name, value in params.items():
    for i, layer in enumerate(ref.layers):
      getattr(layer, name)[...] = value[i]
  ref.embed[...] = target.embed[...]
  ref.final_norm[...] = target.final_norm[...]
  np.testing.assert_allclose(drafter.logits(tokens), ref.logits(tokens), atol=1e-5)


def test_early_exit_bad_arguments(target):
  with pytest.raises(ValueError, match=r"num_layers must be an int in \[1, 2\]"):
    drafters.EarlyExit(target, 3)
  with pytest.raises(ValueError, match="adapter must be one of"):
    drafters.EarlyExit(target, 1, adapter="mlp")
  with pytest.raises(ValueError, match="unknown drafter spec 'bigram'"):
    drafters.parse_spec("bigram")


def test_drafter_spec_grammar_and_old_spellings():
  """One grammar (``early_exit_ADAPTER:M``); ``linear:M`` / ``block:M`` still read, with a
  deprecation warning naming the new spelling."""
  assert drafters.parse_spec("early_exit_block:2") == ("early_exit_block", 2)
  assert drafters.parse_spec("dir:/x") == ("dir", "/x")
  for old, new in (("linear:4", "early_exit_linear:4"), ("block:2", "early_exit_block:2")):
    with pytest.warns(FutureWarning, match=f"'{old}' is deprecated: write '{new}'"):
      assert drafters.parse_spec(old) == drafters.parse_spec(new)
    assert drafters.canonical_spec(old) == new
  for bad in ("block:0", "early_exit_linear:0", "early_exit_mlp:2", "early_exit_linear:x"):
    with pytest.raises(ValueError, match="unknown drafter spec"):
      drafters.parse_spec(bad)


def test_load_drafter_refuses_a_trained_kind(target):
  with pytest.raises(ValueError, match="trained by distillation: build it with "
                                       "configs/train_drafter.py"):
    distill.load_drafter("early_exit_block:1", target, corpus=_corpus())


def test_soft_bigram_is_the_mean_target_distribution(target):
  corpus = _corpus()
  sb = distill.build_soft_bigram(target, corpus, top=CFG.vocab_size, teacher_top=CFG.vocab_size)
  # the reference: one jitted pass over the corpus right-padded to one length (causal: the
  # padding does not change a row's first len(s) logits), not one eager pass per sequence
  padded = np.zeros((len(corpus), max(map(len, corpus))), np.int32)
  for i, s in enumerate(corpus):
    padded[i, :len(s)] = s
  logits = np.asarray(jax.jit(target.logits)(jnp.asarray(padded)))
  probs = np.asarray(jax.nn.softmax(
      np.concatenate([logits[i, :len(s)] for i, s in enumerate(corpus)]), -1), np.float64)
  prev = np.concatenate([np.asarray(s) for s in corpus])
  a = int(prev[0])
  expected = probs[prev == a].mean(0)
  got = np.exp(np.asarray(sb.logits(jnp.array([[a]]))[0, 0], np.float64))
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)
  unseen = sorted(set(range(CFG.vocab_size)) - set(prev.tolist()))
  if unseen:  # rows of unseen tokens: the corpus-wide mean
    got = np.exp(np.asarray(sb.logits(jnp.array([[unseen[0]]]))[0, 0], np.float64))
    np.testing.assert_allclose(got, probs.mean(0), rtol=1e-4, atol=1e-7)


def test_soft_bigram_truncates_to_top_entries(target):
  sb = distill.build_soft_bigram(target, _corpus(), top=5)
  logits = np.asarray(sb.logits(jnp.arange(CFG.vocab_size)[None]))[0]
  assert (np.isfinite(logits).sum(-1) == 5).all()
  np.testing.assert_allclose(np.exp(logits).sum(-1), 1.0, rtol=1e-5)


def test_linear_fit_and_distillation_improve_acceptance(target, tmp_path):
  """Ridge fit beats the identity adapter; distillation lowers the loss and resumes exactly."""
  corpus = _corpus(16)
  data = distill.teacher_data(target, corpus, 1, window=32, top=CFG.vocab_size)
  starts = [1] * len(corpus)
  plain = drafters.EarlyExit(target, 1, adapter="block")
  a0 = distill.acceptance(plain, target, corpus, starts)
  fitted = distill.fit_linear(drafters.EarlyExit(target, 1, adapter="block"), data)
  a1 = distill.acceptance(fitted, target, corpus, starts)
  assert a1 > a0 + 0.05, (a0, a1)  # measured: 0.50 -> 0.63
  batch = tuple(jnp.asarray(x) for x in (data.features, data.top_ids, data.top_probs, data.mask))
  loss0 = float(distill._distill_loss(fitted, *batch))
  key = jax.random.key(0)
  ckpt = tmp_path / "ckpt"
  trained = distill.train_adapter(key, fitted, data, steps=40, batch_size=4, learning_rate=3e-3,
                                  warmup_steps=5, checkpoint_dir=ckpt, save_every=20,
                                  progress=False)
  assert float(distill._distill_loss(trained, *batch)) < loss0
  # resume: drop the last checkpoint (as if killed after step 20) and run again to 40
  import shutil  # noqa: PLC0415
  shutil.rmtree(ckpt / "40")
  again = distill.fit_linear(drafters.EarlyExit(target, 1, adapter="block"), data)
  distill.train_adapter(key, again, data, steps=40, batch_size=4, learning_rate=3e-3,
                        warmup_steps=5, checkpoint_dir=ckpt, save_every=20, progress=False)
  for x, y in zip(jax.tree.leaves(nnx.state(again, drafters.Adapter)),
                  jax.tree.leaves(nnx.state(trained, drafters.Adapter))):
    np.testing.assert_array_equal(x, y)


def test_save_and_load_round_trip(target, tmp_path):
  drafter = _randomise(drafters.EarlyExit(target, 2, adapter="block"))
  distill.save_drafter(tmp_path / "d", drafter, {"hidden_size": CFG.hidden_size})
  loaded = distill.load_drafter(f"dir:{tmp_path / 'd'}", target)
  tokens = jnp.array([[1, 2, 3]])
  np.testing.assert_array_equal(loaded.logits(tokens), drafter.logits(tokens))
  with pytest.raises(FileNotFoundError, match="no trained drafter here"):
    distill.load_drafter(f"dir:{tmp_path / 'nothing'}", target)


def test_built_drafters_are_cached(target, tmp_path):
  corpus = _corpus()
  for spec in ("soft_bigram", "early_exit_linear:1"):
    a = distill.load_drafter(spec, target, corpus=corpus, cache_dir=tmp_path)
    b = distill.load_drafter(spec, target, cache_dir=tmp_path)  # from the cache, no corpus
    tokens = jnp.array([[4, 5, 6]])
    np.testing.assert_array_equal(a.logits(tokens), b.logits(tokens))
  with pytest.raises(ValueError, match="pass corpus="):
    distill.load_drafter("early_exit_linear:2", target)


def _arrays(drafter) -> list[np.ndarray]:
  if isinstance(drafter, drafters.SoftBigram):
    return [np.asarray(drafter.ids[...]), np.asarray(drafter.log_probs[...])]
  return [np.asarray(drafter.adapter_w[...]), np.asarray(drafter.adapter_b[...])]


def test_linear_build_equals_fit_on_teacher_data(target):
  """The cached build's regression rows (no teacher head) give fit_linear's adapter exactly."""
  corpus = _corpus(10) + [list(range(40)) * 8]  # one sequence longer than the 256-token window
  built = distill._early_exit_linear(target, corpus, 1)
  fitted = distill.fit_linear(drafters.EarlyExit(target, 1, adapter="linear"),
                              distill.teacher_data(target, corpus, 1))
  for x, y in zip(_arrays(built), _arrays(fitted)):
    assert np.array_equal(x, y)


class _Interrupt(KeyboardInterrupt):
  pass


@pytest.mark.parametrize("spec", ["soft_bigram", "early_exit_linear:1"])
def test_interrupted_build_resumes_bit_identically(target, tmp_path, monkeypatch, capsys, spec):
  """Ctrl-C in the middle of a build keeps its finished parts; the rerun computes only the rest
  and builds the same drafter, array for array, as an uninterrupted build."""
  corpus = _corpus(2 * distill.BUILD_PART + 3)  # three parts
  whole = distill.load_drafter(spec, target, corpus=corpus, cache_dir=tmp_path / "a",
                               progress=False)
  assert not (tmp_path / "a" / spec.replace(":", "_") / "partial").exists()
  assert capsys.readouterr().err == ""  # progress=False: silent
  passes = []
  padded = distill._padded

  def counting(seq, bucket, stop=None):
    passes.append(len(seq))
    if stop is not None and len(passes) > stop:
      raise _Interrupt
    return padded(seq, bucket)

  stop = distill.BUILD_PART + 2  # interrupted in the second part
  monkeypatch.setattr(distill, "_padded", lambda seq, bucket: counting(seq, bucket, stop))
  with pytest.raises(_Interrupt):
    distill.load_drafter(spec, target, corpus=corpus, cache_dir=tmp_path / "b", progress=False)
  work = tmp_path / "b" / spec.replace(":", "_") / "partial"
  assert sorted(f.name for f in work.iterdir()) == ["build.json", "part_00000.npz"]
  assert not (work.parent / "drafter.json").exists()
  passes.clear()
  monkeypatch.setattr(distill, "_padded", lambda seq, bucket: counting(seq, bucket))
  resumed = distill.load_drafter(spec, target, corpus=corpus, cache_dir=tmp_path / "b",
                                 progress=True)
  assert len(passes) == len(corpus) - distill.BUILD_PART  # the saved part is not recomputed
  err = capsys.readouterr().err
  assert f"building drafter {spec}" in err
  assert f"resuming: {distill.BUILD_PART} of {len(corpus)} sequences done" in err
  assert not work.exists()  # the parts are dropped once the drafter is saved
  for x, y in zip(_arrays(resumed), _arrays(whole), strict=True):
    assert np.array_equal(x, y)
  for x, y in zip(_arrays(distill.load_drafter(spec, target, cache_dir=tmp_path / "b")),
                  _arrays(whole), strict=True):
    assert np.array_equal(x, y)


def test_parts_of_another_build_are_not_reused(target, tmp_path, monkeypatch):
  """Saved parts of an interrupted build on another corpus are discarded, not mixed in."""
  spec = "early_exit_linear:1"
  other, corpus = _corpus(2 * distill.BUILD_PART, seed=1), _corpus(2 * distill.BUILD_PART)
  padded, passes = distill._padded, []

  def stop_after_one_part(seq, bucket):
    passes.append(1)
    if len(passes) > distill.BUILD_PART:
      raise _Interrupt
    return padded(seq, bucket)

  monkeypatch.setattr(distill, "_padded", stop_after_one_part)
  with pytest.raises(_Interrupt):
    distill.load_drafter(spec, target, corpus=other, cache_dir=tmp_path, progress=False)
  assert (tmp_path / "early_exit_linear_1" / "partial" / "part_00000.npz").is_file()
  monkeypatch.setattr(distill, "_padded", padded)
  got = distill.load_drafter(spec, target, corpus=corpus, cache_dir=tmp_path, progress=False)
  want = distill.load_drafter(spec, target, corpus=corpus, progress=False)  # not cached
  for x, y in zip(_arrays(got), _arrays(want), strict=True):
    assert np.array_equal(x, y)


def test_drafters_run_in_speculative_decoding(target):
  """Each drafter kind drives specdec.generate; gls_strong still equals autoregressive."""
  corpus = _corpus()
  keys = jax.random.split(jax.random.key(1), 4)
  prompt = jnp.array([3, 5, 7])
  kw = dict(num_drafts=2, draft_length=3, max_new_tokens=10, top_k=8)
  ref = jax.vmap(lambda k: specdec.generate(k, target, prompt, scheme="autoregressive",
                                            **kw))(keys)
  for drafter in (distill.build_soft_bigram(target, corpus),
                  distill.fit_linear(drafters.EarlyExit(target, 2, adapter="block"),
                                     distill.teacher_data(target, corpus, 2, window=32))):
    out = jax.vmap(lambda k: specdec.generate(k, target, prompt, scheme="gls_strong",
                                              drafter=drafter, **kw))(keys)
    np.testing.assert_array_equal(out.tokens, ref.tokens)


def test_continuations_are_exact_samples_and_batching_free(target):
  """continuations = one generate per prompt (fold_in(key, i)), whatever the batch size."""
  prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9]]
  key = jax.random.key(3)
  a = specdec.metrics.continuations(key, target, prompts, max_new_tokens=5, top_k=8,
                                    batch_size=2, bucket=8)
  b = specdec.metrics.continuations(key, target, prompts, max_new_tokens=5, top_k=8,
                                    batch_size=3, bucket=16)
  assert a == b
  for i, p in enumerate(prompts):
    gen = specdec.generate(jax.random.fold_in(key, i), target, jnp.asarray(p),
                           scheme="autoregressive", max_new_tokens=5, top_k=8)
    assert a[i] == p + np.asarray(gen.tokens).tolist()


def test_model_drafter_is_a_second_checkpoint(tmp_path):
  """``model:hf:DIR`` loads another checkpoint as the drafter; with the target's own weights
  every SpS draft is accepted (block efficiency L + 1), and a different vocabulary is refused."""
  import lm_helpers  # noqa: PLC0415
  from lcoupling import lm  # noqa: PLC0415

  tok = lm_helpers.tiny_tokenizer()
  cfg = lm_helpers.hf_config("llama", 320)
  lm_helpers.write_hf_checkpoint(tmp_path / "t", cfg, lm_helpers.random_hf_weights(cfg, 0), tok)
  tgt = lm.load(f"hf:{tmp_path / 't'}").model
  drafter = distill.load_drafter(f"model:hf:{tmp_path / 't'}", tgt)
  assert drafter is not tgt
  prompt = jnp.asarray(tok.encode("def add(a, b):").ids)
  keys = jax.random.split(jax.random.key(0), 8)
  out = jax.vmap(lambda k: specdec.generate(k, tgt, prompt, scheme="sps", drafter=drafter,
                                            draft_length=3, max_new_tokens=12, top_k=16))(keys)
  np.testing.assert_array_equal(out.num_blocks, 3)  # 12 tokens = 3 blocks of L + 1 = 4
  np.testing.assert_array_equal(out.accepted_lengths[:, :3], 3)
  cfg2 = dict(cfg, vocab_size=cfg["vocab_size"] + 64)  # a padded embedding table
  lm_helpers.write_hf_checkpoint(tmp_path / "d", cfg2, lm_helpers.random_hf_weights(cfg2, 1),
                                 tok)
  other = distill.load_drafter(f"model:hf:{tmp_path / 'd'}", tgt)
  with pytest.raises(ValueError, match="vocab"):
    specdec.generate(keys[0], tgt, prompt, scheme="sps", drafter=other, max_new_tokens=4)


def test_drafter_step_benchmark_runs(tmp_path):
  """benchmarks/drafters.py times a target and its drafters in one run and prints the ratios."""
  import subprocess  # noqa: PLC0415
  import sys  # noqa: PLC0415

  import lm_helpers  # noqa: PLC0415

  tok = lm_helpers.tiny_tokenizer()
  cfg = lm_helpers.hf_config("llama", 320)
  lm_helpers.write_hf_checkpoint(tmp_path / "t", cfg, lm_helpers.random_hf_weights(cfg, 0), tok)
  target = f"hf:{tmp_path / 't'}"
  out = subprocess.run(
      [sys.executable, "benchmarks/drafters.py", "--target", target, "--drafters_dir",
       str(tmp_path / "none"), "--extra", f"model:{target}", "--steps", "3", "--length", "32"],
      capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "| target |" in out.stdout and "| 1.000 |" in out.stdout
  assert f"| model:{target} |" in out.stdout
  empty = subprocess.run([sys.executable, "benchmarks/drafters.py", "--target", target,
                          "--drafters_dir", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=300)
  assert empty.returncode == 2 and "no drafters under" in empty.stderr
