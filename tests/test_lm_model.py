# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""KV-cache decoding of lcoupling.lm.Llama equals cache-free recomputation.

Tiny random configs (grouped-query and multi-head attention, tied and untied
heads, q/k/v biases, Llama-3 rotary scaling and per-frequency factors) with
weights scaled for sharp attention, so a wrong position, mask or cache entry
changes the logits by O(1). Every cached logit is compared with
``model.logits`` of the row's full sequence; the SmolLM2 version of this test
is in test_lm_smollm2.py.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lm_helpers as H
from lcoupling.lm import LlamaConfig, cache as cache_lib

CONFIGS = {
    "gqa_tied": LlamaConfig(vocab_size=64, num_layers=2, hidden_size=32, intermediate_size=48,
                            num_heads=4, num_kv_heads=2, head_dim=8, rope_theta=100.0,
                            max_position_embeddings=64),
    "mha_untied_bias_scaled": LlamaConfig(
        vocab_size=64, num_layers=2, hidden_size=32, intermediate_size=48, num_heads=4,
        num_kv_heads=4, head_dim=8, rope_theta=500.0, tie_embeddings=False, attention_bias=True,
        rope_scaling=("llama3", 8.0, 1.0, 4.0, 16.0), rope_freq_factors=(1.0, 2.0, 4.0, 8.0),
        max_position_embeddings=64),
}


class _Jitted:
  """The model with jitted calls (eager dispatch would compile every op per shape)."""

  def __init__(self, model):
    self.model = model
    self._call = jax.jit(lambda m, t, c, p: m(t, c, p))
    self._logits = jax.jit(lambda m, t: m.logits(t))

  def init_cache(self, *a):
    return self.model.init_cache(*a)

  def __call__(self, tokens, cache, positions):
    from lcoupling.lm import check_tokens
    check_tokens(tokens, self.model.vocab_size)
    return self._call(self.model, tokens, cache, positions)

  def logits(self, tokens):
    from lcoupling.lm import check_tokens
    check_tokens(tokens, self.model.vocab_size)
    return self._logits(self.model, tokens)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def model(request):
  return _Jitted(H.random_llama(CONFIGS[request.param], seed=1))


T_REF = 12  # every reference pass is one [3, T_REF] cache-free call (one compilation)
S = 16      # every cache has 16 positions


def _full(model, *seqs):
  """Cache-free logits of each sequence, float64 [T_i, V] (one batched, padded call)."""
  batch = np.zeros((3, T_REF), np.int32)
  for i, seq in enumerate(seqs):
    batch[i, :len(seq)] = seq  # causal: the padding after a sequence does not change its logits
  out = np.asarray(model.logits(jnp.asarray(batch)), np.float64)
  return [out[i, :len(seq)] for i, seq in enumerate(seqs)]


def _close(got, ref):
  scale = np.abs(ref).max()
  assert scale > 1.0
  np.testing.assert_allclose(np.asarray(got, np.float64), ref, rtol=0, atol=2e-5 * scale)


def test_single_row_in_pieces(model):
  seq = np.random.default_rng(0).integers(0, 64, 10)
  (ref,) = _full(model, seq)
  cache = model.init_cache(1, S)
  got = []
  for lo, hi in ((0, 4), (4, 5), (5, 9), (9, 10)):
    logits, cache = model(jnp.asarray(seq[None, lo:hi]), cache, jnp.array([lo]))
    got.append(np.asarray(logits[0]))
  _close(np.concatenate(got), ref)


def test_right_padded_rows_with_own_positions(model):
  rng = np.random.default_rng(1)
  lengths = np.array([4, 2, 1])
  seqs = [rng.integers(0, 64, n + 5) for n in lengths]  # prompt + 5 continuation tokens
  refs = _full(model, *seqs)
  batch = np.full((3, 4), 63, np.int32)  # padding 63 must never be attended to
  for b, n in enumerate(lengths):
    batch[b, :n] = seqs[b][:n]
  cache = model.init_cache(3, S)
  logits, cache = model(jnp.asarray(batch), cache, jnp.zeros(3, jnp.int32))
  for b, n in enumerate(lengths):
    _close(logits[b, :n], refs[b][:n])
  pos = lengths.copy()
  # one token each, then four tokens each, at the rows' own positions
  for width in (1, 4):
    step = np.stack([seqs[b][pos[b]:pos[b] + width] for b in range(3)])
    logits, cache = model(jnp.asarray(step), cache, jnp.asarray(pos, jnp.int32))
    for b in range(3):
      _close(logits[b], refs[b][pos[b]:pos[b] + width])
    pos = pos + width


def test_broadcast_take_and_copy_window(model):
  """The verification pattern: K rows share a prompt, then adopt one row's window."""
  rng = np.random.default_rng(2)
  p, k, l1 = 4, 3, 4
  prompt = rng.integers(0, 64, p)
  drafts = rng.integers(0, 64, (k, l1))
  nxt = 7
  refs = _full(model, *[np.r_[prompt, d, nxt] for d in drafts])
  cache = model.init_cache(1, S)
  _, cache = model(jnp.asarray(prompt[None]), cache, jnp.array([0]))
  cache = cache_lib.broadcast_rows(cache, k)
  logits, cache = model(jnp.asarray(drafts), cache, jnp.full((k,), p, jnp.int32))
  for r in range(k):
    _close(logits[r], refs[r][p:p + l1])
  rows = np.array([2, 2, 0])
  taken = cache_lib.take_rows(cache, jnp.asarray(rows))
  logits, _ = model(jnp.full((k, 1), nxt), taken, jnp.full((k,), p + l1, jnp.int32))
  for r in range(k):
    _close(logits[r], refs[rows[r]][-1:])
  copied = cache_lib.copy_window(cache, jnp.int32(1), jnp.int32(p), l1)
  logits, _ = model(jnp.full((k, 1), nxt), copied, jnp.full((k,), p + l1, jnp.int32))
  for r in range(k):
    _close(logits[r], refs[1][-1:])


def test_window_starting_at_negative_positions(model):
  """Tokens at negative positions are neither written nor visible."""
  rng = np.random.default_rng(3)
  seq = rng.integers(0, 64, 3)
  window = np.r_[rng.integers(0, 64, 2), seq[:2]]  # 2 junk tokens at positions -2, -1
  ref, junk = _full(model, seq, window)
  cache = model.init_cache(1, S)
  logits, cache = model(jnp.asarray(window[None]), cache, jnp.array([-2]))
  _close(logits[0, 2:], ref[:2])
  written = np.abs(np.asarray(cache.k)).sum(axis=(0, 1, 3, 4)) > 0  # per position
  assert written.tolist() == [True, True] + [False] * (S - 2)  # no wrap-around to S-2, S-1
  logits, cache = model(jnp.asarray(seq[None, 2:]), cache, jnp.array([2]))
  _close(logits[0], ref[2:])
  assert not np.allclose(junk[2:], ref[:2], atol=1e-3)  # the junk would matter if it were seen


def test_bad_token_ids_and_context(model):
  cache = model.init_cache(1, 8)
  with pytest.raises(ValueError, match=r"token ids must lie in \[0, 64\), got \[64\]"):
    model(jnp.array([[1, 64]]), cache, jnp.array([0]))
  with pytest.raises(ValueError, match=r"got \[-1\]"):
    model.logits(jnp.array([[-1, 2]]))
  with pytest.raises(ValueError, match="exceeds the model's context length 64"):
    model.init_cache(1, 65)


def test_attention_formulations_agree(monkeypatch):
  """The block-diagonal (short query blocks) and batched-matmul attentions are equal."""
  from lcoupling.lm import model as model_lib
  rng = np.random.default_rng(4)
  b, t, hq, hkv, d, s = 2, 3, 6, 2, 8, 10
  q = jnp.asarray(rng.normal(size=(b, t, hq, d)) * 2, jnp.float32)
  k = jnp.asarray(rng.normal(size=(b, s, hkv, d)) * 2, jnp.float32)
  v = jnp.asarray(rng.normal(size=(b, s, hkv, d)), jnp.float32)
  q_pos = jnp.array([[4, 5, 6], [-1, 0, 9]])  # a query with no visible key attends uniformly
  k_pos = jnp.broadcast_to(jnp.arange(s), (b, s))
  assert t * hkv <= model_lib._BLOCK_DIAGONAL_MAX
  small = model_lib._attend(q, k, v, q_pos, k_pos, hkv)
  monkeypatch.setattr(model_lib, "_BLOCK_DIAGONAL_MAX", 0)
  large = model_lib._attend(q, k, v, q_pos, k_pos, hkv)
  np.testing.assert_allclose(np.asarray(small), np.asarray(large), rtol=1e-5, atol=1e-5)
  # and both equal a direct per-head softmax
  qn, kn, vn = (np.asarray(a, np.float64) for a in (q, k, v))
  for r in range(b):
    for i in range(t):
      seen = (np.arange(s) <= int(q_pos[r, i])) & (np.arange(s) >= 0)
      for h in range(hq):
        kh = h // (hq // hkv)
        sc = np.where(seen, kn[r, :, kh] @ qn[r, i, h] / np.sqrt(d), -1e30)
        p = np.exp(sc - sc.max())
        np.testing.assert_allclose(np.asarray(small)[r, i, h * d:(h + 1) * d],
                                   (p / p.sum()) @ vn[r, :, kh], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("lead", [(1,), (1, 1), (2,), (2, 5), (3, 1)])
def test_dense_layout_and_single_row(dtype, lead):
  """``dense(x, w)`` is ``x @ w.T`` for ``w [out, in]`` with a float32 accumulator, for any
  leading shape; one or two bfloat16 rows (computed as ``BF16_MIN_ROWS``, see ``dense``) equal
  the first rows of the same product with those rows stacked on others, bit for bit (in float32
  one row takes XLA's matrix-vector kernel, equal to rounding)."""
  from lcoupling.lm.model import dense
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=lead + (48,)), dtype)
  w = jnp.asarray(rng.normal(size=(40, 48)) / 7, dtype)
  y = dense(x, w)
  assert y.shape == lead + (40,) and y.dtype == jnp.dtype(dtype)
  want = np.asarray(x, np.float64) @ np.asarray(w, np.float64).T
  tol = 1e-5 if dtype == "float32" else 2e-2  # bfloat16 output rounding (8 mantissa bits)
  np.testing.assert_allclose(np.asarray(y, np.float64), want, rtol=tol, atol=tol)
  assert dense(x, w, jnp.float32).dtype == jnp.float32
  if dtype == "bfloat16":  # the padded rows are rows of the multi-row product
    from lcoupling.lm.model import BF16_MIN_ROWS
    for r in (1, 2):
      few = jnp.concatenate([x.reshape(-1, 48)[:1], jnp.full((r - 1, 48), 0.5, dtype)])
      stacked = jnp.concatenate([few, jnp.ones((BF16_MIN_ROWS - r, 48), dtype)])
      np.testing.assert_array_equal(np.asarray(dense(few, w, jnp.float32)),
                                    np.asarray(dense(stacked, w, jnp.float32))[:r])
      assert _dot_lhs_shapes(jax.make_jaxpr(dense)(few, w)) == [(BF16_MIN_ROWS, 48)]
    # Under vmap the rows are padded after the batch axis joins them: 2 x 1 rows become 4, 3 x 1
    # rows stay 3 (before, each element's single row was padded on its own).
    for b, want in ((2, BF16_MIN_ROWS), (3, 3)):
      xs = jnp.ones((b, 1, 48), dtype)
      assert _dot_lhs_shapes(jax.make_jaxpr(jax.vmap(lambda v: dense(v, w)))(xs)) == [(want, 48)]


def _dot_lhs_shapes(closed) -> list[tuple[int, ...]]:
  """The left operand's shape of every ``dot_general`` in a jaxpr, nested jaxprs included."""
  shapes = []

  def walk(jaxpr):
    for e in jaxpr.eqns:
      if e.primitive.name == "dot_general":
        shapes.append(tuple(e.invars[0].aval.shape))
      for v in e.params.values():
        for sub in v if isinstance(v, (tuple, list)) else (v,):
          inner = getattr(sub, "jaxpr", sub)
          if hasattr(inner, "eqns"):
            walk(inner)

  walk(closed.jaxpr)
  return shapes


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_embed_lookup_is_take_without_a_float32_table(dtype):
  """The same rows as ``jnp.take``; compiled, a bfloat16 lookup holds no float32 copy of the
  table (XLA's CPU backend converts a bfloat16 table before a plain gather)."""
  from lcoupling.lm.model import embed_lookup
  table = jnp.asarray(np.random.default_rng(0).normal(size=(97, 24)), dtype)
  tokens = jnp.array([[3, 96, 0], [5, 5, 1]])
  np.testing.assert_array_equal(np.asarray(embed_lookup(table, tokens), np.float32),
                                np.asarray(jnp.take(table, tokens, axis=0), np.float32))
  hlo = jax.jit(embed_lookup).lower(table, tokens).compile().as_text()
  if dtype == "bfloat16":
    assert "f32[97,24]" not in hlo


def test_bfloat16_cache_is_written_without_a_float32_copy():
  """A bfloat16 model's multi-row cached pass writes exactly the entries (and only those) that
  one-row passes write, and compiled it holds no float32 scatter of the stacked cache: XLA's CPU backend has no bfloat16 scatter and converted the whole
  ``[layers, B, S, kv, head]`` cache around every layer's write (5 GB per step at 8 rows of
  Qwen2.5-Coder-1.5B), so multi-row passes cost ~50 ms more per row than one row."""
  c = CONFIGS["gqa_tied"].replace(dtype="bfloat16")
  m = H.random_llama(c, seed=1)
  rows, s = 3, S
  tokens = jnp.array([[1, 2], [3, 4], [5, 6]])
  positions = jnp.array([0, 5, s - 1])  # the last row's second token falls off the cache: dropped
  step = jax.jit(lambda m, t, cache, p: m(t, cache, p))
  cache = m.init_cache(rows, s)
  _, new = step(m, tokens, cache, positions)
  assert new.k.dtype == jnp.bfloat16
  k = np.asarray(new.k, np.float32)
  written = np.zeros(k.shape[:3], bool)
  for b, p in enumerate(np.asarray(positions)):
    written[:, b, p:min(p + 2, s)] = True
  assert np.all(np.any(k[written] != 0, axis=(-1, -2))) and not np.any(k[~written])
  # The same rows written one at a time (one-row passes take another path: a dynamic update).
  for b in range(rows):
    _, one = step(m, tokens[b:b + 1], m.init_cache(1, s), positions[b:b + 1])
    np.testing.assert_array_equal(np.asarray(one.k, np.float32)[:, 0], k[:, b])
    np.testing.assert_array_equal(np.asarray(one.v, np.float32)[:, 0],
                                  np.asarray(new.v, np.float32)[:, b])
  hlo = step.lower(m, tokens, cache, positions).compile().as_text()
  shape = ",".join(map(str, cache.k.shape))
  assert f"bf16[{shape}]" in hlo
  assert not re.search(rf"f32\[{shape}\]\S* (scatter|dynamic-update-slice)\(", hlo)


def test_vmapped_pass_keeps_the_weights_in_place():
  """Under ``jax.vmap`` (the studies decode batches of sequences so) a model's pass equals the
  unbatched pass row by row, gradients pass through ``dense``, and a vmapped decode-like loop
  copies no weight matrix: in a loop whose trip count is batched, XLA's CPU backend had made
  every ``[B, R, in] x [out, in]`` product canonical by copying each weight into ``[in, out]``
  (4 GB for the Qwen2.5-Coder pair, and then the slow kernel), which ``dense`` now avoids by
  merging the batch axis into the rows (``custom_vmap``)."""
  from lcoupling.lm.model import dense  # noqa: PLC0415

  tokens = jnp.array([[[1, 2]], [[3, 4]], [[5, 6]]])  # [B, 1 row, 2 tokens]
  positions = jnp.array([[0], [3], [5]])
  step = lambda m, t, p: m(t, m.init_cache(1, S), p)[0]  # noqa: E731
  batched = jax.jit(jax.vmap(step, in_axes=(None, 0, 0)))
  for dtype in ("float32", "bfloat16"):  # float32: bit for bit; bfloat16: its rounding apart
    m = H.random_llama(CONFIGS["gqa_tied"].replace(dtype=dtype), seed=2)
    out = batched(m, tokens, positions)
    for b in range(3):
      one = np.asarray(jax.jit(step)(m, tokens[b], positions[b]), np.float32)
      if dtype == "float32":
        np.testing.assert_array_equal(np.asarray(out[b]), one)
      else:
        np.testing.assert_allclose(np.asarray(out[b], np.float32), one, rtol=0,
                                   atol=1e-5 * np.abs(one).max())

  def loop(m, t, p):  # a decode-like loop whose trip count depends on the row (batched by vmap)
    def body(c):
      i, cache, acc = c
      logits, cache = m(t, cache, p + 2 * i)
      return i + 1, cache, acc + logits[..., 0].sum()
    return jax.lax.while_loop(lambda c: c[0] < 1 + t[0, 0] % 2, body,
                              (0, m.init_cache(1, S), 0.0))[2]

  hlo = jax.jit(jax.vmap(loop, in_axes=(None, 0, 0))).lower(m, tokens, positions).compile().as_text()
  for w in jax.tree.leaves(m.layer_params()):
    if w.ndim >= 2:  # [layers, out, in]: no [in, out] copy (40 of them before the fix)
      moved = ",".join(map(str, w.shape[-2:][::-1]))
      assert not re.search(rf"bf16\[(\d+,)?{moved}\]\S* (copy|transpose|fusion)\(", hlo), w.shape
  # dense's gradients (custom_vjp around the custom_vmap product), plain and vmapped
  x = jax.random.normal(jax.random.key(0), (3, 4, 5))
  w = jax.random.normal(jax.random.key(1), (6, 5))
  loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))  # noqa: E731
  ref = lambda x, w: jnp.einsum("...i,oi->...o", x, w)  # noqa: E731
  for g, want in ((jax.grad(loss(dense), (0, 1))(x, w), jax.grad(loss(ref), (0, 1))(x, w)),
                  (jax.vmap(jax.grad(loss(dense), (0, 1)), (0, None))(x, w),
                   jax.vmap(jax.grad(loss(ref), (0, 1)), (0, None))(x, w))):
    for a, b in zip(g, want):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
