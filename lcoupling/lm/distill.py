# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Building and training drafters from a target: corpus, teacher targets, fit, distillation.

The pipeline of ``configs/train_drafter.py`` (and of the drafters that studies
build on the fly), each step a function a notebook can call:

1. :func:`lcoupling.specdec.metrics.continuations` -- target-sampled text:
   each prompt continued by the target (exact sampling; prompt ``i`` uses
   ``fold_in(key, i)``). It lives in :mod:`lcoupling.specdec` (which imports
   :mod:`lcoupling.lm`), so this module does not import upward.
2. :func:`teacher_data` -- one cache-free target pass over every sequence:
   the residual stream after the drafter's ``m`` blocks (the drafter's
   *features*), the target's last residual stream, and the target's ``r``
   most likely next tokens with their probabilities (the *teacher*), cut into
   windows of ``window`` tokens that end at the sequence's last token.
3. :func:`fit_linear` -- the ``"linear"`` adapter in closed form (ridge
   regression of the last residual on the features).
4. :func:`train_adapter` -- the ``"block"`` adapter by distillation: minimise
   the cross-entropy :math:`-\sum_{i \in \text{top-}r} q_i \log p_i` of the
   drafter's next-token distribution ``p`` against the teacher's ``q`` (the
   KL divergence up to a constant, on the teacher's ``r`` most likely tokens),
   with optax AdamW and a warm-up + cosine schedule; orbax checkpoints every
   ``save_every`` steps, so an interrupted training resumes where it stopped
   (bit-identically: batch ``s`` is drawn from ``fold_in(key, s)``).
5. :func:`acceptance` -- the mean per-token acceptance
   :math:`\alpha = \mathbb E_t \sum_x \min(p_t(x), q_t(x))` of a drafter on
   held-out sequences, teacher-forced, at a temperature and top-k (the
   single-draft speculative-sampling acceptance of each position).

:func:`save_drafter` / :func:`load_drafter` store a drafter as
``DIR/drafter.json`` + ``DIR/adapter.npz``; :func:`load_drafter` also resolves
the drafter specs of :mod:`lcoupling.lm.drafters` (building ``soft_bigram`` and
``early_exit_linear:M`` from the target on the fly and caching them).
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lcoupling import results
from lcoupling.lm import drafters as drafters_lib
from lcoupling.lm import sampling
from lcoupling.lm.drafters import Adapter, EarlyExit
from lcoupling.lm.model import Llama, decoder_stack, embed_lookup

__all__ = ["TeacherData", "teacher_data", "fit_linear", "train_adapter",
           "acceptance", "save_drafter", "load_drafter", "build_soft_bigram", "pad_prompts",
           "DRAFTER_FORMAT", "DEFAULT_CORPUS_PROMPTS", "BUILD_PART", "default_corpus"]

#: ``drafter.json`` format version. 2: a ``"block"`` adapter's projections are stored ``[out, in]``
#: like the model's (:func:`lcoupling.lm.model.dense`); format 1 files are still read.
DRAFTER_FORMAT = 2


def _round_up(n: int, multiple: int) -> int:
  return int(-(-n // multiple) * multiple)


def pad_prompts(prompts: Sequence[Sequence[int]], *, multiple: int = 64, pad_id: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
  """``(buffer int32[n, P], lengths int32[n])``: prompts right-padded to one length.

  ``P`` is the longest prompt rounded up to ``multiple`` (so that similar
  prompt sets share a compilation).
  """
  lengths = np.array([len(p) for p in prompts], np.int32)
  if not len(lengths) or lengths.min() < 1:
    raise ValueError("prompts must be a non-empty list of non-empty token lists")
  buf = np.full((len(prompts), _round_up(int(lengths.max()), multiple)), pad_id, np.int32)
  for i, p in enumerate(prompts):
    buf[i, :len(p)] = p
  return buf, lengths


class TeacherData(NamedTuple):
  """Windows of target passes (``n`` windows of ``T`` tokens; see :func:`teacher_data`)."""

  features: np.ndarray  #: ``float32[n, T, d]``: residual stream after the drafter's blocks.
  final: np.ndarray  #: ``float32[n, T, d]``: the target's last residual stream.
  top_ids: np.ndarray  #: ``int32[n, T, r]``: the target's ``r`` most likely next tokens.
  top_probs: np.ndarray  #: ``float32[n, T, r]``: their probabilities (temperature 1).
  mask: np.ndarray  #: ``float32[n, T]``: 1 where position ``t`` predicts a real next token.


def _target_pass(target: Llama, num_layers: int, top: int | None):
  """A jitted cache-free target pass ``tokens int32[1, T] -> (h, final[, ids, probs])``.

  ``h``: the residual stream after the first ``num_layers`` blocks; ``final``:
  the last one; with ``top``, the ``top`` most likely next tokens and their
  probabilities (temperature 1).
  """
  params = target.layer_params()
  head_params = {k: v[:num_layers] for k, v in params.items()}
  tail_params = {k: v[num_layers:] for k, v in params.items()}
  c = target.config

  # The weights are arguments of the jitted pass, never closed over: a closure would embed
  # them in the compiled program as constants (a copy of the model per program).
  @jax.jit
  def one(target, head_params, tail_params, tokens):
    t = tokens.shape[1]
    pos = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), tokens.shape)
    x = embed_lookup(target.embed[...], tokens)
    h = decoder_stack(head_params, c.replace(num_layers=num_layers), x, pos, None, pos)[0]
    final = decoder_stack(tail_params, c.replace(num_layers=c.num_layers - num_layers), h, pos,
                          None, pos)[0]
    if top is None:
      return h, final
    probs, ids = jax.lax.top_k(jax.nn.softmax(target.head(final), axis=-1), top)
    return h, final, ids, probs

  return functools.partial(one, target, head_params, tail_params)


def _padded(seq: Sequence[int], bucket: int) -> jax.Array:
  """``int32[1, round_up(len(seq), bucket)]``: ``seq`` right-padded with zeros."""
  tokens = np.zeros((1, _round_up(len(seq), bucket)), np.int32)
  tokens[0, :len(seq)] = seq
  return jnp.asarray(tokens)


def teacher_data(target: Llama, sequences: Sequence[Sequence[int]], num_layers: int, *,
                 window: int = 256, top: int = 64, bucket: int = 128,
                 progress: Callable[[int], None] | None = None) -> TeacherData:
  """Features and teacher targets of every sequence (one cache-free target pass each).

  A sequence longer than ``window`` keeps its last ``window`` tokens'
  positions (the features were computed with the full context; rotary
  attention in an adapter block depends on relative positions only).
  """
  one = _target_pass(target, num_layers, min(top, target.vocab_size))
  out = {k: [] for k in TeacherData._fields}
  for seq in sequences:
    seq = list(seq)
    n = len(seq)
    h, final, ids, probs = (np.asarray(a[0]) for a in one(_padded(seq, bucket)))
    lo = max(0, n - window)
    sl = slice(lo, lo + window)
    mask = np.zeros(h.shape[0], np.float32)
    mask[:n - 1] = 1.0

    def cut(a):
      a = a[sl]
      return np.pad(a, [(0, window - len(a))] + [(0, 0)] * (a.ndim - 1))

    out["features"].append(cut(h).astype(np.float32))
    out["final"].append(cut(final).astype(np.float32))
    out["top_ids"].append(cut(ids).astype(np.int32))
    out["top_probs"].append(cut(probs).astype(np.float32))
    out["mask"].append(cut(mask))
    if progress is not None:
      progress(1)
  return TeacherData(*(np.stack(out[k]) for k in TeacherData._fields))


def fit_linear(drafter: EarlyExit, data: TeacherData, *, ridge: float = 10.0) -> EarlyExit:
  """Sets ``drafter``'s affine map by ridge regression on ``data`` (masked positions); returns it."""
  keep = data.mask > 0
  w, b = drafters_lib.fit_linear_adapter(data.features[keep], data.final[keep], ridge=ridge)
  drafter.set_linear(w, b)
  return drafter


def _distill_loss(drafter, features, ids, probs, mask):
  logp = jax.nn.log_softmax(drafter.head(drafter.adapt(features)), axis=-1)
  ce = -jnp.sum(probs * jnp.take_along_axis(logp, ids, axis=-1), axis=-1)
  return jnp.sum(ce * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def train_adapter(key: jax.Array, drafter: EarlyExit, data: TeacherData, *, steps: int,
                  batch_size: int = 8, learning_rate: float = 3e-4, warmup_steps: int = 50,
                  checkpoint_dir: os.PathLike | str | None = None, save_every: int = 100,
                  progress: bool = True, log: Callable[[dict], None] | None = None) -> EarlyExit:
  """Distils the target into ``drafter``'s adapter (only :class:`~lcoupling.lm.drafters.Adapter`
  weights train); resumable through orbax checkpoints in ``checkpoint_dir``.

  Args:
    key: batch ``s`` holds windows ``choice(fold_in(key, s), n, batch_size)``.
    drafter: an :class:`~lcoupling.lm.drafters.EarlyExit` (modified in place and returned).
    data: :func:`teacher_data` of the training sequences (with ``drafter.num_layers``).
    steps: optimisation steps in all (a resumed run continues to ``steps``).
    batch_size, learning_rate, warmup_steps: AdamW with warm-up + cosine decay.
    checkpoint_dir: where to save/restore ``{adapter, optimizer, step}``; ``None``: no
      checkpoints.
    save_every: steps between checkpoints.
    progress: a tqdm bar.
    log: optional callback receiving ``{"step": s, "loss": ...}`` every ``save_every`` steps.
  """
  import optax  # noqa: PLC0415
  from tqdm.auto import tqdm  # noqa: PLC0415

  if steps < 1:
    raise ValueError(f"steps must be >= 1, got {steps}")
  n = data.features.shape[0]
  if batch_size > n:
    raise ValueError(f"batch_size {batch_size} is larger than the {n} training windows")
  schedule = optax.warmup_cosine_decay_schedule(0.0, learning_rate, min(warmup_steps, steps),
                                                steps)
  optimizer = nnx.Optimizer(drafter, optax.adamw(schedule, weight_decay=0.0), wrt=Adapter)
  arrays = tuple(jnp.asarray(a) for a in (data.features, data.top_ids, data.top_probs, data.mask))

  @nnx.jit
  def step(drafter, optimizer, s, arrays):
    idx = jax.random.choice(jax.random.fold_in(key, s), n, (batch_size,), replace=False)
    batch = tuple(a[idx] for a in arrays)
    diff = nnx.DiffState(0, Adapter)
    loss, grads = nnx.value_and_grad(_distill_loss, argnums=diff)(drafter, *batch)
    optimizer.update(drafter, grads)
    return loss

  mngr = None
  start = 0
  if checkpoint_dir is not None:
    import orbax.checkpoint as ocp  # noqa: PLC0415

    mngr = ocp.CheckpointManager(
        pathlib.Path(checkpoint_dir).resolve(),
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True,
                                             enable_async_checkpointing=False))
    latest = mngr.latest_step()
    if latest is not None:
      template = {"adapter": nnx.state(drafter, Adapter), "opt": nnx.state(optimizer)}
      abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
      restored = mngr.restore(latest, args=ocp.args.StandardRestore(abstract))
      nnx.update(drafter, restored["adapter"])
      nnx.update(optimizer, restored["opt"])
      start = latest
  bar = tqdm(total=steps, initial=start, desc="distill", unit="step", disable=not progress,
             dynamic_ncols=True, leave=False)
  losses = []
  for s in range(start, steps):
    losses.append(float(step(drafter, optimizer, jnp.uint32(s), arrays)))
    bar.update(1)
    if (s + 1) % save_every == 0 or s + 1 == steps:
      bar.set_postfix(loss=f"{np.mean(losses[-save_every:]):.4f}")
      if log is not None:
        log({"step": s + 1, "loss": float(np.mean(losses[-save_every:]))})
      if mngr is not None:
        import orbax.checkpoint as ocp  # noqa: PLC0415

        mngr.save(s + 1, args=ocp.args.StandardSave(
            {"adapter": nnx.state(drafter, Adapter), "opt": nnx.state(optimizer)}))
  bar.close()
  if mngr is not None:
    mngr.wait_until_finished()
  return drafter


def acceptance(drafter, target, sequences: Sequence[Sequence[int]], starts: Sequence[int], *,
               temperature: float = 1.0, top_k: int = 0, bucket: int = 128) -> float:
  r"""Mean :math:`\sum_x \min(p_t(x), q_t(x))` over the positions ``t >= starts[i] - 1`` of each
  sequence (teacher-forced; ``p`` the drafter's, ``q`` the target's next-token distribution,
  both after temperature and top-k).
  """

  @jax.jit
  def overlap(drafter, target, tokens):  # models as arguments: no weights embedded as constants
    def dist(logits):
      return jax.nn.softmax(sampling.filter_logits(logits, temperature, top_k), axis=-1)

    return jnp.sum(jnp.minimum(dist(drafter.logits(tokens)), dist(target.logits(tokens))), -1)

  total, count = 0.0, 0
  for seq, start in zip(sequences, starts):
    n = len(seq)
    tokens = np.zeros((1, _round_up(n, bucket)), np.int32)
    tokens[0, :n] = seq
    a = np.asarray(overlap(drafter, target, jnp.asarray(tokens)))[0, max(start - 1, 0):n - 1]
    total += float(a.sum())
    count += len(a)
  if count == 0:
    raise ValueError("acceptance: no positions to score (each sequence needs a continuation)")
  return total / count


def _bigram_rows(target: Llama, teacher_top: int, bucket: int = 128):
  """``seq -> {previous, probs, ids}``: each position's token and the target's ``teacher_top``
  most likely next tokens with their probabilities (what :func:`build_soft_bigram` averages)."""

  @jax.jit
  def dists(target, tokens):  # the model as an argument: no weights embedded as constants
    return jax.lax.top_k(jax.nn.softmax(target.logits(tokens), axis=-1), teacher_top)

  def rows(seq):
    n = len(seq)
    p, i = (np.asarray(a[0, :n]) for a in dists(target, _padded(seq, bucket)))
    return {"previous": np.asarray(seq), "probs": p, "ids": i}

  return rows


def _linear_rows(target: Llama, num_layers: int, *, window: int = 256, bucket: int = 128):
  """``seq -> {features, final}`` at the positions :func:`fit_linear` regresses on (those of
  :func:`teacher_data`'s windows that predict a real next token), without the teacher's head."""
  one = _target_pass(target, num_layers, None)

  def rows(seq):
    n = len(seq)
    h, final = (np.asarray(a[0]) for a in one(_padded(seq, bucket)))
    sl = slice(max(0, n - window), n - 1)
    return {"features": h[sl].astype(np.float32), "final": final[sl].astype(np.float32)}

  return rows


#: Corpus sequences per part of a drafter build: each part is saved as it is made, so an
#: interrupted build loses at most one part's work (:func:`load_drafter`).
BUILD_PART = 8


def _read_part(path: pathlib.Path | None, names) -> dict[str, np.ndarray] | None:
  """The arrays ``names`` of a saved part, or ``None`` (no such file, or an unreadable one)."""
  import zipfile  # noqa: PLC0415

  if path is None or not path.is_file():
    return None
  try:
    with np.load(path, allow_pickle=False) as z:
      if set(z.files) != set(names):
        return None
      return {k: z[k] for k in names}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # damaged: recompute the part
    return None


def _build_parts(rows: Callable[[list[int]], dict[str, np.ndarray]], names: Sequence[str],
                 corpus: Sequence[Sequence[int]], work: pathlib.Path | None, stamp: dict,
                 progress: Callable[[int], None] | None = None,
                 note: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
  """``rows`` of every corpus sequence, each field concatenated over the sequences in order.

  The sequences are processed :data:`BUILD_PART` at a time; with ``work``,
  each part is written to ``work/part_NNNNN.npz`` (atomically) as it is made
  and a later call with the same ``stamp`` (written to ``work/build.json``)
  reads it instead of recomputing it. A different stamp clears ``work``. The
  result is the same array for array, bit for bit, however the parts were
  made (NumPy's ``.npz`` round trip is exact).
  """
  import shutil  # noqa: PLC0415

  if work is not None:
    manifest = work / "build.json"
    try:
      same = json.loads(manifest.read_text()) == stamp
    except (OSError, ValueError):
      same = False
    if not same:
      shutil.rmtree(work, ignore_errors=True)
      results.atomic_write_json(manifest, stamp)
  paths = [None if work is None else work / f"part_{i:05d}.npz"
           for i in range(-(-len(corpus) // BUILD_PART))]
  done = [_read_part(path, names) for path in paths]
  have = sum(min(BUILD_PART, len(corpus) - i * BUILD_PART) for i, d in enumerate(done)
             if d is not None)
  if have and note is not None:
    note(f"resuming: {have} of {len(corpus)} sequences done (in {work})")
  if have and progress is not None:
    progress(have)
  parts = []
  for i, (path, part) in enumerate(zip(paths, done)):
    if part is None:
      chunk = []
      for seq in corpus[i * BUILD_PART:(i + 1) * BUILD_PART]:
        chunk.append(rows(list(seq)))
        if progress is not None:
          progress(1)
      part = {k: np.concatenate([c[k] for c in chunk]) for k in names}
      if path is not None:
        with results.atomic_writer(path) as f:
          np.savez(f, **part)
    parts.append(part)
  return {k: np.concatenate([part[k] for part in parts]) for k in names}


def build_soft_bigram(target: Llama, sequences: Sequence[Sequence[int]], *, top: int = 64,
                      teacher_top: int = 256) -> drafters_lib.SoftBigram:
  """:func:`lcoupling.lm.drafters.soft_bigram` of the target's distributions on ``sequences``."""
  return _soft_bigram(target, sequences, top=top, teacher_top=teacher_top)


def _soft_bigram(target, sequences, *, top=64, teacher_top=256, work=None, stamp=None,
                 progress=None, note=None) -> drafters_lib.SoftBigram:
  teacher_top = min(teacher_top, target.vocab_size)
  names = ("previous", "probs", "ids")
  r = _build_parts(_bigram_rows(target, teacher_top), names, sequences, work,
                   {**(stamp or {}), "teacher_top": teacher_top}, progress, note)
  return drafters_lib.soft_bigram(r["previous"], r["probs"], r["ids"], target.vocab_size, top=top)


def _early_exit_linear(target, sequences, num_layers, *, ridge=10.0, work=None, stamp=None,
                       progress=None, note=None) -> EarlyExit:
  """``fit_linear(EarlyExit(target, num_layers), teacher_data(target, sequences, num_layers))``
  from the regression's rows alone (no teacher head), built in parts (:func:`_build_parts`)."""
  r = _build_parts(_linear_rows(target, num_layers), ("features", "final"), sequences, work,
                   {**(stamp or {}), "num_layers": num_layers}, progress, note)
  drafter = EarlyExit(target, num_layers, adapter="linear")
  drafter.set_linear(*drafters_lib.fit_linear_adapter(r["features"], r["final"], ridge=ridge))
  return drafter


# --------------------------------------------------------------------------
# Saving and loading.
# --------------------------------------------------------------------------


def save_drafter(directory: os.PathLike | str, drafter, meta: dict[str, Any] | None = None
                 ) -> pathlib.Path:
  """Writes ``drafter.json`` + ``adapter.npz`` (EarlyExit) or ``table.npz`` (SoftBigram), atomically."""
  import io  # noqa: PLC0415

  directory = pathlib.Path(directory)
  info: dict[str, Any] = {"format": DRAFTER_FORMAT, **(meta or {})}
  buf = io.BytesIO()
  if isinstance(drafter, EarlyExit):
    info.update(kind="early_exit", num_layers=drafter.num_layers, adapter=drafter.adapter)
    leaves = {"w": drafter.adapter_w[...], "b": drafter.adapter_b[...]}
    if drafter.adapter == "block":
      leaves.update({f"block.{k}": v for k, v in drafter.block.get_value().items()})
    np.savez(buf, **{k: np.asarray(v) for k, v in leaves.items()})
    name = "adapter.npz"
  elif isinstance(drafter, drafters_lib.SoftBigram):
    info.update(kind="soft_bigram")
    np.savez(buf, ids=np.asarray(drafter.ids[...]), log_probs=np.asarray(drafter.log_probs[...]))
    name = "table.npz"
  else:
    raise TypeError(f"save_drafter saves EarlyExit and SoftBigram drafters, got "
                    f"{type(drafter).__name__}")
  results.atomic_write_bytes(directory / name, buf.getvalue())
  results.atomic_write_json(directory / "drafter.json", info)
  return directory


def _read_drafter(directory: pathlib.Path, target: Llama):
  path = directory / "drafter.json"
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no trained drafter here; train one with `python -m "
                            f"experiments.run --config configs/train_drafter.py ...`")
  info = json.loads(path.read_text())
  if info.get("format") not in (1, DRAFTER_FORMAT):
    raise ValueError(f"{path}: drafter format {info.get('format')!r}, expected {DRAFTER_FORMAT}")
  if info["kind"] == "soft_bigram":
    with np.load(directory / "table.npz") as z:
      return drafters_lib.SoftBigram(z["ids"], z["log_probs"]), info
  if info["kind"] != "early_exit":
    raise ValueError(f"{path}: unknown drafter kind {info['kind']!r}")
  if info.get("hidden_size", target.config.hidden_size) != target.config.hidden_size:
    raise ValueError(f"{path}: drafter was trained for another target (hidden size "
                     f"{info['hidden_size']} vs {target.config.hidden_size})")
  drafter = EarlyExit(target, int(info["num_layers"]), adapter=info["adapter"])
  dt = target.config.jnp_dtype
  with np.load(directory / "adapter.npz") as z:
    drafter.set_linear(z["w"], z["b"])
    if drafter.adapter == "block":
      block = {k: z[f"block.{k}"] for k in drafter.block.get_value()}
      if info["format"] == 1:  # format 1 stored the block's projections [in, out]
        block = {k: v.swapaxes(-1, -2) if v.ndim == 3 else v for k, v in block.items()}
      drafter.block.set_value({k: jnp.asarray(v, dt) for k, v in block.items()})
  return drafter, info


#: Prompts of the default drafter corpus: HumanEval/0..109 (HumanEval/110..163 held out, as in the
#: speculative-decoding studies).
DEFAULT_CORPUS_PROMPTS = 110


def default_corpus(tokenizer, data_dir: os.PathLike | str = "data",
                   num_prompts: int | None = None) -> list[list[int]]:
  """The first ``num_prompts`` HumanEval prompts (default :data:`DEFAULT_CORPUS_PROMPTS`), tokenized.

  The corpus a training-free drafter is built from when none is given
  (:func:`load_drafter`); the prompts are fed as raw text (no chat template).
  """
  from lcoupling.lm import prompts as prompts_lib  # noqa: PLC0415

  n = DEFAULT_CORPUS_PROMPTS if num_prompts is None else int(num_prompts)
  if n < 1:
    raise ValueError(f"num_corpus_prompts must be >= 1, got {n}")
  texts = prompts_lib.humaneval_prompts(data_dir)[:n]
  return [list(tokenizer.encode(t)) for t in texts]


def _target_digest(target: Llama, corpus) -> str:
  """A short digest of the target (config and a strided sample of its embedding) and corpus."""
  import hashlib  # noqa: PLC0415

  h = hashlib.sha256(repr(target.config).encode())
  embed = np.asarray(jax.device_get(target.embed[...]))
  h.update(np.ascontiguousarray(embed.reshape(-1)[::4099]).tobytes())
  h.update(json.dumps([list(map(int, s)) for s in corpus]).encode())
  return h.hexdigest()[:16]


def load_drafter(spec: str, target: Llama, *, corpus: Sequence[Sequence[int]] | None = None,
                 cache_dir: os.PathLike | str | None = None, data_dir: os.PathLike | str = "data",
                 dtype: str | None = None, tokenizer=None, num_corpus_prompts: int | None = None,
                 progress: bool = True):
  """The drafter named by ``spec`` (:func:`lcoupling.lm.drafters.parse_spec`) for ``target``.

  The training-free drafters (``soft_bigram``, ``early_exit_linear:M``) are
  built from the target on a corpus. Without ``corpus`` they are built from
  the first ``num_corpus_prompts`` HumanEval prompts (:func:`default_corpus`,
  needs the tokenizer: pass a :class:`lcoupling.lm.LoadedLM` as ``target`` or
  ``tokenizer=``) and cached under ``data_dir/drafters/<digest of target and
  corpus>/``, so the first call builds (about a minute for SmolLM2 on a CPU,
  with a status line and a progress bar on stderr) and later calls load.

  A cached build is made in parts of :data:`BUILD_PART` corpus sequences
  (the target passes, the expensive step), each saved under
  ``cache_dir/<spec>/partial/`` as it is made: a build interrupted (Ctrl-C,
  a kill) resumes from its saved parts, and the drafter is bit-identical to
  an uninterrupted build's. The parts are deleted once the drafter is saved.

  Example: ``load_drafter("early_exit_linear:4", lm.load("smollm2-135m"))``.

  Args:
    spec: ``"soft_bigram"``, ``"early_exit_linear:M"``, ``"dir:DIR"`` or ``"model:SPEC"``.
    target: the target model, or a :class:`lcoupling.lm.LoadedLM` (its model and tokenizer).
    corpus: token sequences to build ``soft_bigram`` / ``early_exit_linear:M`` from
      (default: :func:`default_corpus`).
    cache_dir: where built drafters are cached (``cache_dir/<spec>/``, written atomically:
      ``drafter.json`` last; the parts of a build in progress in ``cache_dir/<spec>/partial/``);
      default ``None``: not cached when ``corpus`` is given, ``data_dir/drafters/<digest>``
      for the default corpus.
    data_dir, dtype: for ``model:SPEC`` (:func:`lcoupling.lm.load`) and the default corpus.
    tokenizer: to tokenize the default corpus (taken from ``target`` if it is a ``LoadedLM``).
    num_corpus_prompts: size of the default corpus (default :data:`DEFAULT_CORPUS_PROMPTS`).
    progress: a one-line status and a progress bar on stderr while a drafter is built;
      ``False``: silent (what a study run with ``--noprogress`` passes).
  """
  if hasattr(target, "model") and hasattr(target, "tokenizer"):  # a LoadedLM
    tokenizer = target.tokenizer if tokenizer is None else tokenizer
    target = target.model
  kind, arg = drafters_lib.parse_spec(spec)
  if kind not in drafters_lib.TRAINING_FREE + ("dir", "model"):
    raise ValueError(f"drafter {spec!r} is trained by distillation: build it with "
                     "configs/train_drafter.py and load the result as 'dir:DIR'")
  if kind in drafters_lib.TRAINING_FREE:  # the current spelling (names the cache directory)
    spec = kind if arg is None else f"{kind}:{arg}"
  if kind == "model":
    from lcoupling.lm.loading import load  # noqa: PLC0415

    return load(arg, data_dir=data_dir, dtype=dtype).model
  if kind == "dir":
    return _read_drafter(pathlib.Path(arg), target)[0]
  source = "the given corpus"
  if corpus is None and cache_dir is None:
    if tokenizer is None:
      raise ValueError(f"drafter {spec!r} is built from the target on a corpus: pass corpus= "
                       "(token sequences), or tokenizer= (or a LoadedLM as the target) to build it "
                       "from the HumanEval prompts")
    corpus = default_corpus(tokenizer, data_dir, num_corpus_prompts)
    cache_dir = pathlib.Path(data_dir) / "drafters" / _target_digest(target, corpus)
    source = f"{len(corpus)} HumanEval prompts"
  cached = None if cache_dir is None else pathlib.Path(cache_dir) / spec.replace(":", "_")
  if cached is not None and (cached / "drafter.json").is_file():
    if (cached / "partial").exists():  # left by a build killed after its last write
      import shutil  # noqa: PLC0415

      shutil.rmtree(cached / "partial", ignore_errors=True)
    return _read_drafter(cached, target)[0]
  if corpus is None:
    raise ValueError(f"drafter {spec!r} is built from the target on a corpus: pass corpus=")
  import sys  # noqa: PLC0415

  def note(line):
    print(line, file=sys.stderr, flush=True)

  bar = None
  if progress:
    from tqdm.auto import tqdm  # noqa: PLC0415

    where = f"; cached in {cached}" if cached is not None else ""
    note(f"building drafter {spec} from {source} ({sum(map(len, corpus))} tokens, once{where})")
    bar = tqdm(total=len(corpus), desc=f"drafter {spec}", unit="seq", leave=False,
               dynamic_ncols=True)
  work = None if cached is None else cached / "partial"
  kw = dict(work=work, stamp={"format": DRAFTER_FORMAT, "spec": spec, "part": BUILD_PART,
                              "digest": _target_digest(target, corpus)},
            progress=None if bar is None else bar.update, note=note if progress else None)
  try:
    if kind == "soft_bigram":
      drafter = _soft_bigram(target, corpus, **kw)
    else:
      drafter = _early_exit_linear(target, corpus, arg, **kw)
  finally:
    if bar is not None:
      bar.close()
  if cached is not None:
    save_drafter(cached, drafter, {"spec": spec, "hidden_size": target.config.hidden_size})
    import shutil  # noqa: PLC0415

    shutil.rmtree(work, ignore_errors=True)
  return drafter
