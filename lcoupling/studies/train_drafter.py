# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Drafters for a target: build / train them, and measure acceptance, block efficiency and cost.

Sweep points are drafters (``configs/train_drafter.py``)::

    {"drafter": "soft_bigram"}
    {"drafter": "early_exit", "layers": m, "adapter": "linear" | "block"}
    {"drafter": "model", "spec": SPEC}     # another checkpoint (model:SPEC), measured only

named in ``config.drafters`` by their drafter specs (``"soft_bigram"``,
``"early_exit_linear:M"``, ``"early_exit_block:M"``;
:func:`lcoupling.lm.drafters.parse_spec`; the old ``"linear:M"`` / ``"block:M"`` are
still read, with a deprecation warning).

Each point

1. gets the **corpus** (shared by all points, cached in ``WORKDIR/corpus.json``):
   the target's own continuations (temperature ``config.temperature``, top-k
   ``config.top_k``, ``config.num_new_tokens`` tokens) of the training prompts
   ``config.train_prompts`` and of the held-out prompts
   ``config.heldout_prompts`` (:func:`lcoupling.specdec.metrics.continuations`; prompt
   ``i`` of the prompt list uses ``fold_in(fold_in(key, CORPUS), i)``);
2. builds the drafter on the training sequences: the soft bigram
   (:func:`~lcoupling.lm.distill.build_soft_bigram`), or the early-exit drafter
   with a ridge-fitted linear adapter (:func:`~lcoupling.lm.distill.fit_linear`),
   then for ``"block"`` distils its adapter block
   (:func:`~lcoupling.lm.distill.train_adapter`, ``config.train``; resumable:
   orbax checkpoints under the drafter's directory); saves it to
   ``config.output_dir/NAME`` (the studies load it as ``dir:config.output_dir/NAME``);
   a ``model:SPEC`` drafter (e.g. ``model:qwen2.5-coder-0.5b`` for the 1.5B target)
   is loaded (:func:`lcoupling.lm.load`, the target's dtype), neither built
   nor saved, and needs no training corpus;
3. measures on the held-out sequences the mean per-token acceptance
   :math:`\alpha = \mathbb E \sum_x \min(p, q)` at the study's temperature and
   top-k (``alpha``) and without top-k (``alpha_full``); the block efficiency of
   single-draft speculative sampling (``sps``, ``L = config.draft_length``)
   with :func:`lcoupling.specdec.generate` on the held-out prompts
   (``config.num_seeds`` seeds each; per seed the mean over prompts of tokens /
   target calls, then mean ± SEM over seeds; ``pooled_block_efficiency``: all
   tokens over all target calls, the estimator used before) next to the i.i.d.
   estimate :math:`(1 - \alpha^{L+1}) / (1 - \alpha)`; and the cost of a drafter
   step relative to a target step (batch 1, medians of interleaved timed decode steps,
   :func:`lcoupling.specdec.metrics.step_ms`).

Records: ``drafter`` (the name), ``spec``, ``layers``, ``adapter``, ``alpha``,
``alpha_full``, ``block_efficiency`` (+ ``_sem``), ``pooled_block_efficiency``,
``block_efficiency_iid``,
``draft_step_ms``, ``target_step_ms``, ``cost_ratio``, ``build_seconds``,
``num_train_tokens``, ``path``.
"""

from __future__ import annotations

import json
import pathlib
import re
import time
import zlib

import jax
import jax.numpy as jnp

from lcoupling import plotting, results as results_lib, specdec
from lcoupling.lm import distill, drafters
from lcoupling.studies import common
from lcoupling.studies import specdec_common as sc
from lcoupling.validation import check_int, check_positive, check_range, need

__all__ = ["validate", "run_point", "summarize", "plot", "tables", "drafter_name", "main",
           "corpus"]

_CORPUS, _SPS, _TRAIN = 0, 1, 2  # key streams


def drafter_name(point) -> str:
  """``soft_bigram``, ``early_exit_{adapter}_m{layers}`` or ``model_{SPEC}``: the drafter's name
  (and directory name: characters other than letters, digits, ``.``, ``-`` become ``_``)."""
  if point["drafter"] == "soft_bigram":
    return "soft_bigram"
  if point["drafter"] == "model":
    return "model_" + re.sub(r"[^A-Za-z0-9.-]+", "_", point["spec"])
  return f"early_exit_{point['adapter']}_m{point['layers']}"


def validate(config) -> None:
  sc.check_prompt_set(config, "prompts")
  for field in ("num_new_tokens", "num_seeds", "draft_length", "window", "teacher_top",
                "timing_steps", "max_new_tokens", "corpus_batch_size"):
    check_int(config, field, 1)
  check_positive(config.temperature, "temperature")
  check_int(config, "top_k", 0)
  a = check_range(config, "train_prompts", minimum=0)
  b = check_range(config, "heldout_prompts", minimum=0)
  need(not (a[0] < b[1] and b[0] < a[1]), f"config.train_prompts {a} and config.heldout_prompts "
       f"{b} overlap: the held-out prompts must be unseen")
  need(len(config.drafters) > 0, "config.drafters must list at least one drafter")
  for spec in config.drafters:
    _parse(spec)
  for field in ("steps", "batch_size", "save_every"):
    check_int(config, f"train.{field}", 1)
  check_positive(config.train.learning_rate, "train.learning_rate")


def _parse(spec: str) -> dict:
  """A drafter spec of :func:`lcoupling.lm.drafters.parse_spec` (``"soft_bigram"``,
  ``"early_exit_linear:M"``, ``"early_exit_block:M"``) -> a sweep point."""
  try:
    kind, m = drafters.parse_spec(spec)
  except (TypeError, ValueError):
    kind, m = None, None
  if kind == "soft_bigram":
    return {"drafter": "soft_bigram"}
  if kind in drafters.EARLY_EXIT:
    return {"drafter": "early_exit", "layers": m, "adapter": kind[len("early_exit_"):]}
  if kind == "model":
    return {"drafter": "model", "spec": m}
  raise ValueError(f"config.drafters: unknown drafter {spec!r}; use 'soft_bigram', "
                   "'early_exit_linear:M' or 'early_exit_block:M' (M = target blocks the drafter "
                   "runs), or 'model:SPEC' (another checkpoint with the target's tokenizer)")


def sweep(config) -> list[dict]:
  """The sweep points of ``config.drafters`` (used by ``configs/train_drafter.py``)."""
  return [_parse(s) for s in config.drafters]


def corpus(key, config, cache_file: pathlib.Path | None = None, *, progress: bool = False,
           parts=("train", "heldout")) -> dict:
  """The training / held-out sequences (prompt + target continuation), cached in ``cache_file``.

  Returns ``{"settings": ..., "train": [...], "heldout": [...]}`` (the ``parts``
  asked for, and whatever else the cache holds), each entry
  ``{"index", "prompt_length", "tokens"}``. Prompt ``i`` (of the whole prompt
  list) is continued with ``fold_in(fold_in(key, CORPUS), i)``, so a part
  computed later is the one computed first.
  """
  settings = _corpus_settings(config)
  out = {"settings": settings}
  if cache_file is not None and cache_file.is_file():
    data = json.loads(cache_file.read_text())
    if data.get("settings") == settings:
      out = data
  missing = [part for part in parts if part not in out]
  if not missing:
    return out
  from lcoupling import parallel  # noqa: PLC0415

  llm = sc.load_target(config)
  texts = sc.prompt_texts(config.prompts, config.prompt_field, config.data_dir)
  for part in missing:
    lo, hi = config[f"{part}_prompts"]
    if hi > len(texts):
      raise ValueError(f"config.{part}_prompts ends at {hi} but there are {len(texts)} prompts")
    ids = [llm.tokenizer.encode(t) for t in texts[lo:hi]]
    bar = parallel.progress_bar(len(ids), f"corpus ({part})", enabled=progress, unit="prompt")
    seqs = specdec.metrics.continuations(
        jax.random.fold_in(key, _CORPUS), llm.model, ids, max_new_tokens=config.num_new_tokens,
        temperature=config.temperature, top_k=config.top_k, eos_id=llm.tokenizer.eos_id,
        batch_size=config.corpus_batch_size, indices=range(lo, hi), progress=bar.update)
    bar.close()
    out[part] = [{"index": i, "prompt_length": len(p), "tokens": t}
                 for i, p, t in zip(range(lo, hi), ids, seqs)]
  if cache_file is not None:
    results_lib.atomic_write_json(cache_file, out)
  return out


def _corpus_settings(config) -> dict:
  return {k: results_lib.to_jsonable(config[k]) for k in (
      "target", "prompts", "prompt_field", "train_prompts", "heldout_prompts", "num_new_tokens",
      "temperature", "top_k", "seed", "dtype")}


def _build(key, llm, point, train_seqs, config, directory: pathlib.Path, progress: bool):
  if point["drafter"] == "model":
    return distill.load_drafter(f"model:{point['spec']}", llm.model, data_dir=config.data_dir,
                                dtype=llm.config.dtype)
  if point["drafter"] == "soft_bigram":
    return distill.build_soft_bigram(llm.model, train_seqs)
  m = point["layers"]
  data = distill.teacher_data(llm.model, train_seqs, m, window=config.window,
                              top=config.teacher_top)
  drafter = distill.fit_linear(drafters.EarlyExit(llm.model, m, adapter=point["adapter"]), data,
                               ridge=config.ridge)
  if point["adapter"] == "block":
    t = config.train
    log_file = directory / "train_log.jsonl"
    distill.train_adapter(
        key, drafter, data, steps=t.steps, batch_size=t.batch_size,
        learning_rate=t.learning_rate, warmup_steps=t.warmup_steps,
        checkpoint_dir=directory / "checkpoints", save_every=t.save_every, progress=progress,
        log=lambda row: results_lib.append_jsonl(log_file, row))
  return drafter


def _sps_block_efficiency(key, llm, drafter, heldout, config, done=lambda: None):
  """Block efficiency of single-draft speculative sampling per seed (held-out prompts):
  ``(paper, pooled)`` lists, the mean over prompts of tokens / target calls
  (:func:`lcoupling.specdec.metrics.block_efficiency_per_seed`) and all tokens over all target
  calls (:func:`lcoupling.specdec.metrics.pooled_block_efficiency`).

  ``done()`` is called after each seed (a progress bar's ``update``).
  """
  prompts = [e["tokens"][:e["prompt_length"]] for e in heldout]
  buf, lengths = distill.pad_prompts(prompts, multiple=64)
  index = jnp.asarray([e["index"] for e in heldout], jnp.uint32)

  def seed_keys(seed):  # prompt i of seed s: fold_in(fold_in(fold_in(key, SPS), s), i)
    k = jax.random.fold_in(jax.random.fold_in(key, _SPS), seed)
    return jax.vmap(lambda i: jax.random.fold_in(k, i))(index)

  keys = jnp.stack([seed_keys(s) for s in range(config.num_seeds)])
  # one chunk per seed (batch_size = the number of prompts): done() after each seed
  gen = specdec.metrics.batched_generate(
      keys, llm.model, buf, lengths, batch_size=len(heldout), progress=lambda _: done(),
      scheme="sps", drafter=drafter, num_drafts=1, draft_length=config.draft_length,
      max_new_tokens=config.max_new_tokens, temperature=config.temperature, top_k=config.top_k,
      eos_id=llm.tokenizer.eos_id)
  per_seed = specdec.metrics.block_efficiency_per_seed(gen.length, gen.num_target_calls)
  pooled = [specdec.metrics.pooled_block_efficiency(jax.tree.map(lambda a, s=s: a[s], gen))
            for s in range(config.num_seeds)]
  return [float(b) for b in per_seed], pooled


def run_point(key, config, point, *, mesh=None, progress=False) -> list[dict]:
  del mesh
  workdir = pathlib.Path(config.output_dir)
  llm = sc.load_target(config)
  model_drafter = point["drafter"] == "model"
  data = corpus(key, config, workdir / "corpus.json", progress=progress,
                parts=("heldout",) if model_drafter else ("train", "heldout"))
  train_seqs = [] if model_drafter else [e["tokens"] for e in data["train"]]
  name = drafter_name(point)
  directory = workdir / name
  t0 = time.perf_counter()
  train_key = jax.random.fold_in(jax.random.fold_in(key, _TRAIN), zlib.crc32(name.encode()))
  drafter = _build(train_key, llm, point, train_seqs,
                   config, directory, progress)
  build_seconds = time.perf_counter() - t0
  if not model_drafter:
    distill.save_drafter(directory, drafter, {
        "name": name, "target": config.target, "hidden_size": llm.config.hidden_size,
        "num_train_sequences": len(train_seqs)})
  heldout = data["heldout"]
  seqs, starts = [e["tokens"] for e in heldout], [e["prompt_length"] for e in heldout]
  from lcoupling import parallel  # noqa: PLC0415

  with parallel.progress_bar(4 + config.num_seeds, f"evaluate {name}", enabled=progress,
                             unit="stage") as bar:
    alpha = distill.acceptance(drafter, llm.model, seqs, starts, temperature=config.temperature,
                               top_k=config.top_k)
    bar.update()
    alpha_full = distill.acceptance(drafter, llm.model, seqs, starts,
                                    temperature=config.temperature)
    bar.update()
    be, be_pooled = _sps_block_efficiency(key, llm, drafter, heldout, config, bar.update)
    be_mean, be_sem = common.mean_sem(be)
    bar.update()
    ms = specdec.metrics.step_ms({"draft": drafter, "target": llm.model}, steps=config.timing_steps)
    draft_ms, target_ms = ms["draft"], ms["target"]
    bar.update()
  length = config.draft_length
  return [{
      "drafter": name, "spec": f"model:{point['spec']}" if model_drafter else f"dir:{directory}",
      "layers": point.get("layers"),
      "adapter": point.get("adapter"),
      "alpha": alpha, "alpha_full": alpha_full, "block_efficiency": be_mean,
      "block_efficiency_sem": be_sem, "pooled_block_efficiency": common.mean_sem(be_pooled)[0],
      # (1 - α^(L+1)) / (1 - α), summed so that α = 1 gives L + 1
      "block_efficiency_iid": sum(alpha ** i for i in range(length + 1)),
      "draft_step_ms": draft_ms, "target_step_ms": target_ms, "cost_ratio": draft_ms / target_ms,
      "build_seconds": build_seconds,
      "num_train_tokens": int(sum(len(s) for s in train_seqs)),
      "path": None if model_drafter else str(directory)}]


def summarize(config, point_records) -> list[dict]:
  del config
  return [r for recs in point_records for r in recs]


def plot(results, figdir) -> list[pathlib.Path]:
  """Acceptance and block efficiency against the drafter's cost (one point per drafter)."""
  plt = plotting.pyplot()
  recs = common.records(results)
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for r in recs:
    for ax, field in zip(axes, ("alpha", "block_efficiency")):
      ax.errorbar(r["cost_ratio"], r[field], yerr=r.get(field + "_sem") or 0, fmt="o")
      ax.annotate(r["drafter"], (r["cost_ratio"], r[field]), fontsize=7,
                  xytext=(3, 3), textcoords="offset points")
  axes[0].set_ylabel("acceptance α (held out)")
  axes[1].set_ylabel("block efficiency, sps, L = %d" % results["meta"]["config"]["draft_length"])
  for ax in axes:
    ax.set_xlabel("drafter step / target step (batch 1)")
    ax.grid(alpha=0.3)
  fig.tight_layout()
  return plotting.save(fig, pathlib.Path(figdir) / "drafters")


def tables(results) -> str:
  """The drafters' table (markdown): block efficiency by the paper's estimator (per prompt, then
  over seeds; ± SEM) and pooled (all tokens over all target calls, the study's earlier value)."""
  recs = common.records(results)
  L = results["meta"]["config"]["draft_length"]
  lines = [f"| drafter | α (top-k) | α (full) | BE sps L={L} | BE pooled | BE iid estimate "
           "| step / target |", "|---|---|---|---|---|---|---|"]
  for r in recs:
    pooled = r.get("pooled_block_efficiency")  # absent in records of older runs
    lines.append(f"| {r['drafter']} | {r['alpha']:.3f} | {r['alpha_full']:.3f} | "
                 f"{common.fmt_mean_sem(r['block_efficiency'], r['block_efficiency_sem'], 3)} | "
                 f"{'—' if pooled is None else f'{pooled:.3f}'} | "
                 f"{r['block_efficiency_iid']:.3f} | {r['cost_ratio']:.2f} |")
  return "\n".join(lines)


def main(argv=None) -> int:
  return common.study_main("train_drafter", tables, argv)


if __name__ == "__main__":
  raise SystemExit(main())
