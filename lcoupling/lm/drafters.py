# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Drafters for speculative decoding: small models with the target's vocabulary.

Every drafter implements the model interface of :class:`lcoupling.lm.LanguageModel`
(``init_cache``, cached ``__call__``, cache-free ``logits``), so
:func:`lcoupling.specdec.generate` takes it like any model (or a tuple of them).

* :class:`SoftBigram` -- next-token logits given the previous token only: the
  mean of the target's own next-token distributions after that token on a
  corpus (:func:`soft_bigram`), truncated to its ``M`` most likely tokens.
  Built in seconds, no gradient training; its step costs a table lookup.
* :class:`EarlyExit` -- self-speculative (Kangaroo, LayerSkip): the target's
  first ``m`` blocks, an **adapter** (``"linear"``: an affine map of the
  residual stream, fitted in closed form by ridge regression onto the
  target's last residual, :func:`fit_linear_adapter`; ``"block"``: that affine
  map followed by one transformer block, trained by distillation,
  :mod:`lcoupling.lm.distill`), then the target's final norm and output head.
  Its step costs ``m`` (+ 1) blocks and the head.
* any second checkpoint with the same tokenizer (``lcoupling.lm.load("hf:DIR")``),
  the paper's own setting.

Drafters are named by a spec (:func:`parse_spec`), resolved by
:func:`lcoupling.lm.distill.load_drafter`:

``"soft_bigram"``, ``"early_exit_linear:M"``
    built from the target on the fly (cached in a directory);
``"early_exit_block:M"``
    trained by distillation (``configs/train_drafter.py``, which names its sweep
    points by these specs), then loaded as ``"dir:DIR"``;
``"dir:DIR"``
    a drafter saved by :func:`lcoupling.lm.distill.save_drafter`, e.g. one trained by
    ``configs/train_drafter.py`` (``DIR/drafter.json`` + its weights);
``"model:SPEC"``
    another checkpoint, e.g. ``model:hf:/path/Qwen2.5-0.5B-Instruct``.

Example:
  >>> import jax.numpy as jnp
  >>> from flax import nnx
  >>> from lcoupling.lm import Llama, LlamaConfig
  >>> target = Llama(LlamaConfig(vocab_size=16, num_layers=3, hidden_size=8, intermediate_size=16,
  ...                            num_heads=2, num_kv_heads=1, head_dim=4), rngs=nnx.Rngs(0))
  >>> drafter = EarlyExit(target, 2, adapter="block", rngs=nnx.Rngs(1))
  >>> tokens = jnp.array([[1, 2, 3]])
  >>> cache = drafter.init_cache(1, 8)
  >>> logits, cache = drafter(tokens, cache, jnp.array([0]))
  >>> logits.shape, bool(jnp.allclose(logits, drafter.logits(tokens), atol=1e-5))
  ((1, 3, 16), True)
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lcoupling.lm.markov import PreviousTokenLM
from lcoupling.lm.model import Llama, LlamaConfig, check_tokens, decoder_stack, embed_lookup

__all__ = ["SoftBigram", "EarlyExit", "Adapter", "soft_bigram", "fit_linear_adapter", "parse_spec",
           "canonical_spec", "ADAPTERS", "EARLY_EXIT", "TRAINING_FREE"]

#: Adapter kinds of :class:`EarlyExit`.
ADAPTERS = ("linear", "block")
#: The early-exit drafter kinds of a spec: ``early_exit_linear:M``, ``early_exit_block:M``.
EARLY_EXIT = tuple(f"early_exit_{a}" for a in ADAPTERS)
#: The kinds :func:`lcoupling.lm.distill.load_drafter` builds from the target without training.
TRAINING_FREE = ("soft_bigram", "early_exit_linear")


class Adapter(nnx.Param):
  """The trainable weights of a drafter (``nnx.Optimizer(..., wrt=Adapter)`` trains only them)."""


class SoftBigram(PreviousTokenLM):
  """Logits of the next token given the previous one, from a ``[V, M]`` table.

  Row ``a`` holds the ``M`` most likely next tokens after ``a`` (``ids[a]``) and
  their log-probabilities (``log_probs[a]``); every other token has zero mass
  (``-inf``). Stateless: the cache is the empty tuple.

  Args:
    ids: ``int32[V, M]``.
    log_probs: ``float32[V, M]`` (``-inf`` allowed).
  """

  def __init__(self, ids, log_probs):
    ids, log_probs = np.asarray(ids), np.asarray(log_probs, np.float32)
    if ids.ndim != 2 or ids.shape != log_probs.shape:
      raise ValueError(f"ids and log_probs must both have shape [V, M], got {ids.shape} and "
                       f"{log_probs.shape}")
    if ids.min() < 0 or ids.max() >= ids.shape[0]:
      raise ValueError(f"ids must lie in [0, V = {ids.shape[0]})")
    self.ids = nnx.Variable(jnp.asarray(ids, jnp.int32))
    self.log_probs = nnx.Variable(jnp.asarray(log_probs))

  @property
  def vocab_size(self) -> int:
    return int(self.ids.shape[0])

  def logits(self, tokens):
    check_tokens(tokens, self.vocab_size)
    tokens = jnp.asarray(tokens)
    ids = jnp.take(self.ids[...], tokens, axis=0)  # [B, T, M]
    vals = jnp.take(self.log_probs[...], tokens, axis=0)
    out = jnp.full(tokens.shape + (self.vocab_size,), -jnp.inf, jnp.float32)
    return jnp.put_along_axis(out, ids, vals, axis=-1, inplace=False)


def soft_bigram(previous: np.ndarray, next_probs: np.ndarray, next_ids: np.ndarray,
                vocab_size: int, *, top: int = 64) -> SoftBigram:
  r"""The soft bigram of a corpus: :math:`p(b \mid a) \propto \sum_{t: x_t = a} q_t(b)`.

  Args:
    previous: ``int[n]``: the token ``x_t`` at each corpus position.
    next_probs: ``float[n, r]``: the target's probabilities of its ``r`` most
      likely next tokens at that position (``q_t``, truncated).
    next_ids: ``int[n, r]``: their ids.
    vocab_size: ``V``.
    top: ``M``, entries kept per row.

  Rows of tokens absent from the corpus use the corpus-wide mean. Each row is
  renormalised over its ``M`` kept tokens.
  """
  from scipy import sparse  # noqa: PLC0415

  previous = np.asarray(previous)
  top = min(top, vocab_size)
  n, r = next_ids.shape
  acc = sparse.coo_matrix((np.asarray(next_probs, np.float64).ravel(),
                           (np.repeat(previous, r), np.asarray(next_ids).ravel())),
                          shape=(vocab_size, vocab_size)).tocsr()
  mean = np.asarray(acc.sum(axis=0)).ravel()
  ids = np.zeros((vocab_size, top), np.int32)
  logp = np.full((vocab_size, top), -np.inf, np.float32)
  fallback = np.argsort(-mean, kind="stable")[:top]

  def fill(row, cols, vals):
    order = np.argsort(-vals, kind="stable")[:top]
    cols, vals = cols[order], vals[order]
    ids[row, :len(cols)] = cols
    logp[row, :len(cols)] = np.log(vals / vals.sum())
    if len(cols) < top:  # pad with distinct zero-mass ids
      rest = np.setdiff1d(np.arange(vocab_size), cols)[:top - len(cols)]
      ids[row, len(cols):] = rest

  for a in range(vocab_size):
    lo, hi = acc.indptr[a], acc.indptr[a + 1]
    if hi > lo:
      fill(a, acc.indices[lo:hi], acc.data[lo:hi])
    else:
      fill(a, fallback, mean[fallback])
  return SoftBigram(ids, logp)


def fit_linear_adapter(features: np.ndarray, targets: np.ndarray, *, ridge: float = 10.0
                       ) -> tuple[np.ndarray, np.ndarray]:
  r"""Ridge regression ``(W, b) = argmin ||F W + b - Y||^2 + ridge ||W||^2`` (float64 solve).

  ``features``: residual streams after the drafter's blocks, ``[n, d]``;
  ``targets``: the target's last residual stream at the same positions.
  """
  x = np.asarray(features, np.float64)
  y = np.asarray(targets, np.float64)
  xa = np.concatenate([x, np.ones((len(x), 1))], axis=1)
  reg = ridge * np.eye(xa.shape[1])
  reg[-1, -1] = 0.0  # the bias is not penalised
  sol = np.linalg.solve(xa.T @ xa + reg, xa.T @ y)
  return sol[:-1].astype(np.float32), sol[-1].astype(np.float32)


class EarlyExit(nnx.Module):
  """The target's first ``num_layers`` blocks + an adapter + the target's final norm and head.

  Args:
    target: the :class:`~lcoupling.lm.Llama` target (its weights are copied or
      shared, never modified).
    num_layers: ``m``, the target blocks the drafter runs (``1 .. L - 1``).
    adapter: ``"linear"`` (an affine map, initialised to the identity) or
      ``"block"`` (the affine map, then one transformer block initialised from
      the target's block ``m`` with its output projections at zero, so that it
      starts as the identity too).
    rngs: unused (kept for the NNX constructor convention); may be ``None``.
  """

  def __init__(self, target: Llama, num_layers: int, *, adapter: str = "linear",
               rngs: nnx.Rngs | None = None):
    del rngs
    c = target.config
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or not (
        1 <= num_layers < c.num_layers):
      raise ValueError(f"num_layers must be an int in [1, {c.num_layers - 1}] (the target has "
                       f"{c.num_layers} blocks), got {num_layers!r}")
    if adapter not in ADAPTERS:
      raise ValueError(f"adapter must be one of {ADAPTERS}, got {adapter!r}")
    self.target_config = c
    self.num_layers = num_layers
    self.adapter = adapter
    layers = target.layer_params()
    self.embed = nnx.Variable(target.embed[...])
    self.trunk = nnx.Variable({k: v[:num_layers] for k, v in layers.items()})
    d = c.hidden_size
    self.adapter_w = Adapter(jnp.eye(d, dtype=c.jnp_dtype))
    self.adapter_b = Adapter(jnp.zeros((d,), c.jnp_dtype))
    if adapter == "block":
      blk = {k: v[num_layers:num_layers + 1] for k, v in layers.items()}
      blk["wo"] = jnp.zeros_like(blk["wo"])
      blk["w_down"] = jnp.zeros_like(blk["w_down"])
      self.block = Adapter(blk)
    self.final_norm = nnx.Variable(target.final_norm[...])
    self.lm_head = None if c.tie_embeddings else nnx.Variable(target.lm_head[...])

  @property
  def vocab_size(self) -> int:
    return self.target_config.vocab_size

  @property
  def config(self) -> LlamaConfig:
    """The geometry of the drafter's blocks (the target's, with ``num_layers = m``)."""
    return self.target_config.replace(num_layers=self.num_layers)

  def set_linear(self, w, b) -> None:
    """Sets the affine map (e.g. from :func:`fit_linear_adapter`)."""
    dt = self.target_config.jnp_dtype
    self.adapter_w[...] = jnp.asarray(w, dt)
    self.adapter_b[...] = jnp.asarray(b, dt)

  def init_cache(self, batch_size: int, max_length: int):
    """``(trunk cache, adapter-block cache or ())``: :meth:`Llama.init_cache` of the drafter's
    geometry (:attr:`config`, the target's context length), ``m`` blocks and one."""
    trunk = Llama.init_cache(self, batch_size, max_length)
    return trunk, (jax.tree.map(lambda a: a[:1], trunk) if self.adapter == "block" else ())

  def __call__(self, tokens, cache, positions):
    check_tokens(tokens, self.vocab_size)
    b, t = tokens.shape
    q_pos = jnp.asarray(positions, jnp.int32)[:, None] + jnp.arange(t, dtype=jnp.int32)
    s = cache[0].k.shape[2]
    k_pos = jnp.broadcast_to(jnp.arange(s, dtype=jnp.int32), (b, s))
    x = embed_lookup(self.embed[...], tokens)
    x, trunk_cache = decoder_stack(self.trunk.get_value(), self.config, x, q_pos, cache[0], k_pos)
    x, block_cache = self._adapt(x, q_pos, cache[1], k_pos)
    return self.head(x), (trunk_cache, block_cache)

  def logits(self, tokens):
    check_tokens(tokens, self.vocab_size)
    return self.head(self.adapt(self.features(tokens)))

  def features(self, tokens):
    """Cache-free residual stream after the drafter's ``m`` target blocks, ``[B, T, d]``."""
    b, t = tokens.shape
    pos = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    x = embed_lookup(self.embed[...], tokens)
    return decoder_stack(self.trunk.get_value(), self.config, x, pos, None, pos)[0]

  def adapt(self, features):
    """Cache-free adapter on features ``[B, T, d]`` at positions ``0..T-1`` (for training)."""
    b, t = features.shape[:2]
    pos = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    return self._adapt(features, pos, None, pos)[0]

  def _adapt(self, x, q_pos, cache, k_pos):
    x = x @ self.adapter_w[...] + self.adapter_b[...]
    if self.adapter == "block":
      cfg = self.target_config.replace(num_layers=1)
      x, cache = decoder_stack(self.block.get_value(), cfg, x, q_pos, cache, k_pos)
    return x, cache

  #: The target's final RMSNorm and output head (:meth:`Llama.head`, on the copied weights
  #: ``final_norm``, ``embed`` and ``lm_head``; ``float32`` logits).
  head = Llama.head


def parse_spec(spec: str) -> tuple[str, str | int | None]:
  """``(kind, argument)`` of a drafter spec (module docstring); a clear error otherwise.

  The early-exit kinds are ``early_exit_ADAPTER:M`` (``ADAPTER`` in :data:`ADAPTERS`,
  ``M >= 1`` target layers). The old spellings ``linear:M`` / ``block:M`` (of
  ``configs/train_drafter.py``) are still read, with a ``FutureWarning`` (a deprecation shown
  to users) naming the new spelling.

  >>> parse_spec("early_exit_linear:4")
  ('early_exit_linear', 4)
  >>> parse_spec("soft_bigram")
  ('soft_bigram', None)
  """
  if not isinstance(spec, str):
    raise TypeError(f"drafter spec must be a str, got {type(spec).__name__}")
  if spec == "soft_bigram":
    return "soft_bigram", None
  kind, _, arg = spec.partition(":")
  if kind in ADAPTERS and arg.isdigit() and int(arg) >= 1:  # the old train_drafter spelling
    warnings.warn(f"drafter spec {spec!r} is deprecated: write 'early_exit_{spec}'",
                  FutureWarning, stacklevel=2)
    kind = f"early_exit_{kind}"
  if kind in EARLY_EXIT and arg.isdigit() and int(arg) >= 1:
    return kind, int(arg)
  if kind in ("dir", "model") and arg:
    return kind, arg
  raise ValueError(f"unknown drafter spec {spec!r}; use 'soft_bigram', 'early_exit_linear:M' "
                   "(M target blocks), 'early_exit_block:M' (trained: configs/train_drafter.py), "
                   "'dir:DIR' (a saved / trained drafter) or 'model:SPEC' "
                   "(another checkpoint, e.g. model:hf:DIR)")


def canonical_spec(spec: str) -> str:
  """``spec`` in the current grammar (``linear:4`` -> ``early_exit_linear:4``).

  >>> canonical_spec("early_exit_block:2")
  'early_exit_block:2'
  """
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    kind, arg = parse_spec(spec)
  return kind if arg is None else f"{kind}:{arg}"
