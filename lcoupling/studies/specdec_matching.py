# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Token-level matching on a language model's real next-token distributions.

For every seed ``s`` and prompt ``i`` the target continues the prompt
(``scheme="autoregressive"``, the key ``fold_in(fold_in(key, s), i)``,
temperature ``config.temperature``, top-k) for ``max_new_tokens`` tokens.
At every position ``t`` of a continuation (the prefix = prompt + the first
``t`` generated tokens, teacher-forced in one cache-free pass of each model)
``q_t`` is the target's and ``p_t`` the drafter's next-token distribution,
both after temperature and top-k. They are compared on the union of their two
top-k supports (at most ``2 top_k`` tokens; both are zero elsewhere, so every
quantity below is exact on it). For each ``K`` (sweep points ``{"K": K}``):

* ``gls_matching`` -- **measured** GLS matching, Monte Carlo:
  ``config.num_mc_samples`` draws of :func:`lcoupling.gls_sample` per
  position (``K`` i.i.d. drafts from ``p_t``, target ``q_t``), the fraction
  with ``Y in {X_1..X_K}``;
* ``gls_exact`` -- :func:`lcoupling.bounds.gls_acceptance_probability`
  (exact, quadrature);
* ``lml`` -- the list matching lemma :func:`lcoupling.bounds.list_matching_lemma`;
* ``specinfer_acceptance``, ``spectr_acceptance`` -- Monte Carlo of the
  token-level verifiers (:func:`lcoupling.verifiers.simulate`) with the same
  sample keys; ``spectr_exact`` -- SpecTr's closed form
  :math:`1 - (1 - \beta(\rho^*))^K`;
* ``single_draft`` -- :math:`\sum_x \min(p_t(x), q_t(x))`, the ``K = 1``
  speculative-sampling acceptance (the same for every ``K``).

Every value is the mean over the positions of all continuations of a seed,
then mean +- SEM over seeds; Monte-Carlo values also carry ``*_mc_stderr``,
the Monte-Carlo standard error of that mean. Monte-Carlo sample ``j`` at
position ``t`` of prompt ``i`` under seed ``s`` uses
``fold_in(fold_in(fold_in(fold_in(fold_in(key, MC_STREAM), s), i), t), j)``:
the same for every ``K`` and every scheme (common random numbers), and
disjoint from the generation keys.

Diverse drafts (points ``{"K": K, "draft_temperatures": [t_1, .., t_K]}``, from
``config.draft_temperature_pairs``): draft row ``k`` from the drafter at
temperature ``t_k`` (``q`` stays at ``config.temperature``); ``gls_matching``
(Monte Carlo), ``gls_exact`` and ``lml`` for ``K`` different proposals
(:func:`lcoupling.bounds.gls_acceptance_probability`,
:func:`lcoupling.bounds.diverse_list_matching_lemma`), SpecInfer measured
(``specinfer_acceptance``) and in closed form in the given and the reversed
row order (``specinfer_exact``, ``specinfer_exact_swapped``,
:func:`specinfer_acceptance_exact`), and ``single_draft`` of the first row.
This is the token-level view of the diverse-drafts study
(:mod:`lcoupling.studies.specdec_diverse`).

Reproduces Tables 7 and 8 of Rowan, Phan & Khisti (NeurIPS 2025,
arXiv:2506.05632): the LML as a lower bound of the measured GLS matching on a
real drafter / target pair, ``K in {2, 4, 6, 8}``, temperature 1, top-k 50.
"""

from __future__ import annotations

import functools
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling import acceptance, bounds, core, plotting, specdec, verifiers
from lcoupling.studies import common
from lcoupling.studies import specdec_common as sc
from lcoupling.validation import check_int, check_int_tuple, check_positive, need

__all__ = ["MC_STREAM", "FIELDS", "validate", "run_point", "summarize", "plot",
           "position_distributions", "markdown_table", "tables", "main"]

#: Stream of the Monte-Carlo keys, folded into the run key before the seed (seeds are far
#: below it, so these keys never meet a generation key ``fold_in(key, seed)``).
MC_STREAM = 0x6D617463
#: Record fields (each with ``_sem``; the Monte-Carlo ones also with ``_mc_stderr``).
FIELDS = ("gls_matching", "gls_exact", "lml", "specinfer_acceptance", "spectr_acceptance",
          "spectr_exact", "single_draft")
_MC = {"gls_matching": 0, "specinfer_acceptance": 1, "spectr_acceptance": 2}
#: Record fields of a diverse point (``draft_temperatures`` set): SpecTr needs i.i.d. drafts,
#: SpecInfer depends on the row order (``specinfer_exact``: as given, ``_swapped``: reversed).
DIVERSE_FIELDS = ("gls_matching", "gls_exact", "lml", "specinfer_acceptance", "specinfer_exact",
                  "specinfer_exact_swapped", "single_draft")
_MC_DIVERSE = {"gls_matching": 0, "specinfer_acceptance": 1}
_MAX_SEEDS = 1 << 20


def validate(config) -> None:
  sc.validate_common(config)
  need(1 <= config.top_k <= 512, f"config.top_k must be in [1, 512] for the matching study "
       f"(distributions are compared on the union of the two top-k supports), got "
       f"{config.top_k}")
  need(config.num_seeds < _MAX_SEEDS, f"config.num_seeds must be < {_MAX_SEEDS}")
  check_int_tuple(config, "num_drafts", 1, allow_empty=True)
  pairs = config.draft_temperature_pairs
  need(isinstance(pairs, (tuple, list)), "config.draft_temperature_pairs must be a tuple of "
       f"temperature tuples, got {pairs!r}")
  for pair in pairs:
    need(isinstance(pair, (tuple, list)) and len(pair) >= 2,
         f"config.draft_temperature_pairs: every entry must hold >= 2 temperatures (one per "
         f"draft row), got {pair!r}")
    for t in pair:
      check_positive(t, "draft_temperature_pairs")
  need(len(config.num_drafts) + len(pairs) > 0,
       "config.num_drafts and config.draft_temperature_pairs are both empty: nothing to run")
  check_positive(config.temperature, "temperature")
  check_int(config, "num_mc_samples", 1)
  check_int(config, "mc_positions_per_call", 1)


# --------------------------------------------------------------------------
# The distributions along the target's own continuations (computed once per process).
# --------------------------------------------------------------------------

_CONTINUATIONS: dict = {}
_DISTS: dict = {}


@functools.partial(jax.jit, static_argnames=("temperature", "draft_temperature", "top_k"))
def _union_dists(target, drafter, tokens, temperature, draft_temperature, top_k):
  """``(ids, p, q)`` ``[B, W, 2 top_k]``: both top-k supports, each id once (the second
  copy of an id in both gets zero mass in ``p``; ``q`` is zero off its own top-k).

  The drafter's top-k set does not depend on its temperature, so ``ids`` (and
  the positions of ``p``) are the same for every ``draft_temperature``.
  """
  def filtered(model, t):
    sup = specdec.support(model.logits(tokens), t, top_k)
    return sup.ids, jax.nn.softmax(sup.logits, axis=-1)

  ids_q, q = filtered(target, temperature)
  ids_p, p = filtered(drafter, draft_temperature)
  same = ids_p[..., :, None] == ids_q[..., None, :]  # [B, W, k_p, k_q]
  p_at_q = jnp.sum(jnp.where(same, p[..., :, None], 0.0), axis=-2)
  p_rest = jnp.where(jnp.any(same, axis=-1), 0.0, p)
  ids = jnp.concatenate([ids_q, ids_p], axis=-1)
  return ids, jnp.concatenate([p_at_q, p_rest], -1), jnp.concatenate([q, jnp.zeros_like(q)], -1)


def _continuations(key, config, progress: bool = False):
  """The target's continuations of the selected prompts (cached): ``(loaded, drafter,
  prompts, buf, lens, batch)`` (:func:`specdec_common.generate_batch` output); ``progress``:
  while the drafter is built."""
  cache_key = (config.target, config.dtype, config.drafter, config.prompts,
               config.prompt_format, tuple(config.prompt_indices), config.num_seeds,
               config.max_new_tokens, config.temperature, config.top_k, config.stop_at_eos,
               str(jax.random.key_data(key).tolist()))
  if cache_key not in _CONTINUATIONS:
    loaded = sc.load_target(config)
    drafter = sc.load_drafter(config, loaded, progress=progress)
    prompts = sc.load_prompts(config, loaded.tokenizer)
    batch = sc.generate_batch(key, config, loaded.model, None, prompts,
                              list(range(config.num_seeds)), scheme="autoregressive",
                              num_drafts=1, draft_length=1, temperature=config.temperature,
                              eos=sc.eos_id(config, loaded))
    buf, lens = prompts.buffer(config.prompt_pad_multiple)
    _CONTINUATIONS.clear()  # keep one set
    _DISTS.clear()
    _CONTINUATIONS[cache_key] = (loaded, drafter, prompts, buf, lens, batch)
  return cache_key, _CONTINUATIONS[cache_key]


def position_distributions(key, config, draft_temperature: float | None = None, *,
                           progress: bool = False) -> list[dict]:
  """Per seed: ``p, q float32[n, M]`` at every continuation position, and their addresses.

  ``q`` is the target's distribution at ``config.temperature``, ``p`` the
  drafter's at ``draft_temperature`` (default: the same). Returns one dict per
  seed with ``p``, ``q``, ``prompt`` (index in the prompt set) and
  ``position`` (0-based index of the generated token the distribution
  predicts) arrays. ``progress``: a status line and a progress bar while the drafter is
  built.
  """
  t_draft = float(config.temperature if draft_temperature is None else draft_temperature)
  cont_key, (loaded, drafter, prompts, buf, lens, batch) = _continuations(key, config, progress)
  if (cont_key, t_draft) in _DISTS:
    return _DISTS[(cont_key, t_draft)]
  width = buf.shape[1] + config.max_new_tokens
  rows = 2  # sequences per cache-free pass (two [rows, width, V] logit arrays live at once)
  out = []
  for s in range(config.num_seeds):
    seqs = np.zeros((len(prompts.indices), width), np.int32)
    for i, n in enumerate(lens):
      g = batch.length[s, i]
      seqs[i, :n] = buf[i, :n]
      seqs[i, n:n + g] = batch.tokens[s, i, :g]
    ps, qs, pidx, tidx = [], [], [], []
    for lo in range(0, len(seqs), rows):
      chunk = seqs[lo:lo + rows]
      chunk = np.concatenate([chunk, np.repeat(chunk[-1:], rows - len(chunk), 0)])
      _, p, q = jax.device_get(_union_dists(loaded.model, drafter, jnp.asarray(chunk),
                                            float(config.temperature), t_draft, config.top_k))
      for r in range(min(rows, len(seqs) - lo)):
        i = lo + r
        n, g = int(lens[i]), int(batch.length[s, i])
        sl = slice(n - 1, n - 1 + g)  # position t predicts generated token t
        ps.append(p[r, sl]), qs.append(q[r, sl])
        pidx.append(np.full(g, prompts.indices[i])), tidx.append(np.arange(g))
    out.append({"p": np.concatenate(ps), "q": np.concatenate(qs),
                "prompt": np.concatenate(pidx), "position": np.concatenate(tidx)})
  _DISTS[(cont_key, t_draft)] = out
  return out


# --------------------------------------------------------------------------
# Exact values and Monte Carlo per position.
# --------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("num_drafts",))
def _exact(p, q, num_drafts):
  def one(p, q):
    _, beta = acceptance.spectr_rho(p, q, num_drafts)
    spectr = acceptance.spectr_acceptance(beta, num_drafts)
    return jnp.stack([bounds.gls_acceptance_probability(p, q, num_drafts),
                      bounds.list_matching_lemma(p, q, num_drafts), spectr,
                      jnp.sum(jnp.minimum(p, q))])
  return jax.lax.map(lambda pq: one(*pq), (p, q), batch_size=64)


@functools.partial(jax.jit, static_argnames=("num_drafts", "num_samples", "batch"))
def _monte_carlo(keys, p, q, num_drafts, num_samples, batch):
  """Acceptance frequencies ``[n, 3]`` (GLS, SpecInfer, SpecTr) per position."""
  def one(args):
    key, lp, lq = args

    def sample(j):
      k = jax.random.fold_in(key, j)
      gls = core.gls_sample(k, lp, lq, num_drafts=num_drafts).accepted
      si = verifiers.simulate(k, "specinfer", lp, lq, num_drafts)[1]
      st = verifiers.simulate(k, "spectr", lp, lq, num_drafts)[1]
      return jnp.stack([gls, si, st]).astype(jnp.float32)

    return jnp.mean(jax.vmap(sample)(jnp.arange(num_samples)), axis=0)

  return jax.lax.map(one, (keys, acceptance.safe_log(p), acceptance.safe_log(q)),
                     batch_size=batch)


def specinfer_acceptance_exact(ps, q) -> jax.Array:
  r"""SpecInfer's token-level acceptance with drafts from ``ps[0], ps[1], ...``, in this order.

  Recursive rejection sampling accepts draft ``k`` with probability
  :math:`\min(1, r_k(x)/p_k(x))` and otherwise moves to the residual
  :math:`r_{k+1} \propto \max(r_k - p_k, 0)`, :math:`r_0 = q`. With the
  unnormalised residual :math:`m_k = c_k r_k` (:math:`c_k` the probability
  that drafts ``0..k-1`` were all rejected, the mass of :math:`m_k`),
  :math:`m_{k+1} = \max(m_k - c_k p_k, 0)` and the acceptance is
  :math:`1 - \sum_x m_K(x)`.

  Example:
    >>> import jax.numpy as jnp
    >>> q = jnp.array([0.2, 0.3, 0.5])
    >>> float(specinfer_acceptance_exact(jnp.array([[0.2, 0.3, 0.5]]), q))  # p = q
    1.0
    >>> ps = jnp.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    >>> round(float(specinfer_acceptance_exact(ps, q)), 4), round(float(
    ...     specinfer_acceptance_exact(ps[::-1], q)), 4)  # order matters
    (0.86, 0.83)
  """
  m = q
  for k in range(ps.shape[0]):
    m = jnp.maximum(m - jnp.sum(m) * ps[k], 0.0)
  return 1.0 - jnp.sum(m)


@jax.jit
def _exact_diverse(ps, q):
  """``[n, 5]``: exact GLS, diverse LML, SpecInfer in the given and the swapped row order,
  and ``sum min(p_0, q)``, for ``ps [n, K, M]``, ``q [n, M]``."""
  def one(ps, q):
    return jnp.stack([bounds.gls_acceptance_probability(ps, q),
                      bounds.diverse_list_matching_lemma(ps, q),
                      specinfer_acceptance_exact(ps, q), specinfer_acceptance_exact(ps[::-1], q),
                      jnp.sum(jnp.minimum(ps[0], q))])
  return jax.lax.map(lambda pq: one(*pq), (ps, q), batch_size=64)


@functools.partial(jax.jit, static_argnames=("num_samples", "batch"))
def _monte_carlo_diverse(keys, ps, q, num_samples, batch):
  """Acceptance frequencies ``[n, 2]`` (GLS, SpecInfer in the given order), one proposal
  per draft row (``ps [n, K, M]``)."""
  def one(args):
    key, lps, lq = args

    def sample(j):
      k = jax.random.fold_in(key, j)
      gls = core.gls_sample(k, lps, lq, num_drafts=lps.shape[0]).accepted
      si = verifiers.simulate(k, "specinfer", lps, lq, lps.shape[0])[1]
      return jnp.stack([gls, si]).astype(jnp.float32)

    return jnp.mean(jax.vmap(sample)(jnp.arange(num_samples)), axis=0)

  return jax.lax.map(one, (keys, acceptance.safe_log(ps), acceptance.safe_log(q)),
                     batch_size=batch)


def _mc_keys(key, seed, prompts, positions):
  base = jax.random.fold_in(jax.random.fold_in(key, MC_STREAM), seed)
  return jax.vmap(lambda i, t: jax.random.fold_in(jax.random.fold_in(base, i), t))(
      jnp.asarray(prompts, jnp.uint32), jnp.asarray(positions, jnp.uint32))


def _diverse_point(key, config, temps, progress: bool = False) -> list[dict]:
  """Two or more draft rows, row ``k`` from the drafter at ``temps[k]``."""
  dists = [position_distributions(key, config, t, progress=progress) for t in temps]
  per_seed = {f: [] for f in DIVERSE_FIELDS}
  mc_var = {f: [] for f in _MC_DIVERSE}
  positions = []
  for s in range(len(dists[0])):
    q = jnp.asarray(dists[0][s]["q"])
    ps = jnp.stack([jnp.asarray(d[s]["p"]) for d in dists], axis=1)  # [n, K, M]
    exact = np.asarray(_exact_diverse(ps, q), np.float64)
    keys = _mc_keys(key, s, dists[0][s]["prompt"], dists[0][s]["position"])
    mc = np.asarray(_monte_carlo_diverse(keys, ps, q, config.num_mc_samples,
                                         config.mc_positions_per_call), np.float64)
    n = len(exact)
    positions.append(n)
    for col, f in enumerate(("gls_exact", "lml", "specinfer_exact", "specinfer_exact_swapped",
                             "single_draft")):
      per_seed[f].append(float(exact[:, col].mean()))
    for f, col in _MC_DIVERSE.items():
      a = mc[:, col]
      per_seed[f].append(float(a.mean()))
      mc_var[f].append(float(np.sum(a * (1 - a) / config.num_mc_samples)) / n ** 2)
  rec = {"K": len(temps), "draft_temperatures": [float(t) for t in temps],
         "num_positions_per_seed": positions, "num_mc_samples": config.num_mc_samples,
         "num_seeds": len(positions), "num_prompts": len(set(dists[0][0]["prompt"].tolist()))}
  for f in DIVERSE_FIELDS:
    rec[f + "_per_seed"] = per_seed[f]
  for f in _MC_DIVERSE:
    rec[f + "_mc_var_per_seed"] = mc_var[f]
  return [rec]


def run_point(key, config, point, *, mesh=None, progress=False) -> list[dict]:
  del mesh
  if point.get("draft_temperatures"):
    return _diverse_point(key, config, tuple(point["draft_temperatures"]), progress)
  k = int(point["K"])
  dists = position_distributions(key, config, progress=progress)
  per_seed = {f: [] for f in FIELDS}
  mc_var = {f: [] for f in _MC}
  positions = []
  for s, d in enumerate(dists):
    p, q = jnp.asarray(d["p"]), jnp.asarray(d["q"])
    exact = np.asarray(_exact(p, q, k), np.float64)
    keys = _mc_keys(key, s, d["prompt"], d["position"])
    mc = np.asarray(_monte_carlo(keys, p, q, k, config.num_mc_samples,
                                 config.mc_positions_per_call), np.float64)
    n = len(exact)
    positions.append(n)
    for f, col in (("gls_exact", 0), ("lml", 1), ("spectr_exact", 2), ("single_draft", 3)):
      per_seed[f].append(float(exact[:, col].mean()))
    for f, col in _MC.items():
      a = mc[:, col]
      per_seed[f].append(float(a.mean()))
      # variance of the mean over positions of per-position binomial frequencies
      mc_var[f].append(float(np.sum(a * (1 - a) / config.num_mc_samples)) / n ** 2)
  rec = {"K": k, "draft_temperatures": None, "num_positions_per_seed": positions, "num_mc_samples": config.num_mc_samples,
         "num_seeds": len(dists), "num_prompts": len(set(dists[0]["prompt"].tolist()))}
  for f in FIELDS:
    rec[f + "_per_seed"] = per_seed[f]
  for f in _MC:
    rec[f + "_mc_var_per_seed"] = mc_var[f]
  return [rec]


def summarize(config, point_records) -> list[dict]:
  del config
  out = []
  for recs in point_records:
    for r in recs:
      r = dict(r)
      diverse = bool(r.get("draft_temperatures"))
      for f in DIVERSE_FIELDS if diverse else FIELDS:
        r[f], r[f + "_sem"] = sc.seed_stats(r[f + "_per_seed"])
      for f in _MC_DIVERSE if diverse else _MC:
        v = r[f + "_mc_var_per_seed"]
        r[f + "_mc_stderr"] = float(np.sqrt(np.sum(v)) / len(v))  # of the mean over seeds
      out.append(r)
  return sorted(out, key=lambda r: (bool(r.get("draft_temperatures")), r["K"],
                                    r.get("draft_temperatures") or []))


# --------------------------------------------------------------------------
# Figures and tables (from results.json only).
# --------------------------------------------------------------------------

_STYLE = {
    "gls_exact": dict(color="C0", ls="-", label="GLS (exact)"),
    "gls_matching": dict(color="C0", marker="o", ls="none", label="GLS (measured, Monte Carlo)"),
    "lml": dict(color="C0", ls="--", label="list matching lemma"),
    "specinfer_acceptance": dict(color="C1", marker="s", ls=":", label="SpecInfer (Monte Carlo)"),
    "spectr_exact": dict(color="C2", ls="-", label="SpecTr (exact)"),
    "spectr_acceptance": dict(color="C2", marker="^", ls="none", label="SpecTr (Monte Carlo)"),
    "single_draft": dict(color="k", ls=":", label=r"single draft $\sum\min(p,q)$"),
}


def _short(spec: str) -> str:
  """A model / drafter spec without its directories (``hf:/a/b/model`` -> ``hf:model``)."""
  kind, sep, rest = spec.partition(":")
  return kind + sep + pathlib.PurePath(rest).name if "/" in rest else spec


def _split(results) -> tuple[list[dict], list[dict]]:
  """(i.i.d. records sorted by K, diverse records in sweep order)."""
  recs = common.records(results)
  iid = sorted((r for r in recs if not r.get("draft_temperatures")), key=lambda r: r["K"])
  return iid, [r for r in recs if r.get("draft_temperatures")]


def _pair_label(r) -> str:
  return "(" + ", ".join(str(float(t)) for t in r["draft_temperatures"]) + ")"


def plot(results, figdir) -> list[pathlib.Path]:
  iid, diverse = _split(results)
  paths = _plot_iid(results, iid, figdir) if iid else []
  if diverse:
    paths += _plot_diverse(results, diverse, figdir)
  return paths


def _plot_diverse(results, recs, figdir) -> list[pathlib.Path]:
  plt = plotting.pyplot()
  cfg = results["meta"]["config"]
  x = np.arange(len(recs))
  fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(recs) + 2), 4.2))
  bars = (("gls_exact", "GLS (exact)", "C0"), ("lml", "list matching lemma", "C9"),
          ("specinfer_exact", "SpecInfer (this order)", "C1"),
          ("specinfer_exact_swapped", "SpecInfer (rows swapped)", "C3"))
  width = 0.8 / len(bars)
  for n, (f, label, color) in enumerate(bars):
    ax.bar(x + (n - (len(bars) - 1) / 2) * width, [r[f] for r in recs], width, label=label,
           color=color)
  ax.errorbar(x - 1.5 * width, [r["gls_matching"] for r in recs],
              yerr=[2 * (r.get("gls_matching_mc_stderr") or 0.0) for r in recs], fmt="ko", ms=3,
              label="GLS measured (± 2 MC s.e.)")
  ax.set_xticks(x, [_pair_label(r) for r in recs])
  ax.set(xlabel="drafter temperatures of the draft rows", ylabel="token-level acceptance")
  ax.set_title(f"diverse drafts: {_short(cfg['target'])} / {_short(cfg['drafter'])}, target T = "
               f"{cfg['temperature']}, top-k {cfg['top_k']}", fontsize=9)
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3, axis="y")
  fig.tight_layout()
  return plotting.save(fig, pathlib.Path(figdir) / "specdec_matching_diverse")


def _plot_iid(results, recs, figdir) -> list[pathlib.Path]:
  plt = plotting.pyplot()
  cfg = results["meta"]["config"]
  k = np.array([r["K"] for r in recs])
  fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
  for f, style in _STYLE.items():
    y = np.array([r[f] for r in recs], float)
    if style.get("marker") and style.get("ls") == "none":
      e = np.array([r.get(f + "_mc_stderr") or 0.0 for r in recs])
      ax.errorbar(k, y, yerr=2 * e, capsize=2, ms=5, **style)
    else:
      ax.plot(k, y, **{**style, "marker": style.get("marker", "")})
  ax.set(xlabel="number of drafts K", ylabel="token-level acceptance (mean over positions)")
  ax.set_title(f"{_short(cfg['target'])} / {_short(cfg['drafter'])}, T = {cfg['temperature']}, "
               f"top-k {cfg['top_k']}", fontsize=9)
  ax.legend(fontsize=7, loc="upper left")
  ax.grid(alpha=0.3)
  gap = np.array([r["gls_exact"] - r["lml"] for r in recs])
  mc_gap = np.array([r["gls_matching"] - r["lml"] for r in recs])
  e = np.array([r.get("gls_matching_mc_stderr") or 0.0 for r in recs])
  ax2.plot(k, gap, "C0-", label="exact GLS - LML")
  ax2.errorbar(k, mc_gap, yerr=2 * e, fmt="o", color="C0", ms=4, capsize=2,
               label="measured GLS - LML (± 2 MC s.e.)")
  ax2.axhline(0, color="k", lw=0.5)
  ax2.set(xlabel="number of drafts K", ylabel="acceptance gap")
  ax2.set_title("how far the LML is below the matching", fontsize=9)
  ax2.legend(fontsize=8)
  ax2.grid(alpha=0.3)
  for a in (ax, ax2):
    a.xaxis.set_major_locator(plotting.integer_locator())
  fig.tight_layout()
  return plotting.save(fig, pathlib.Path(figdir) / "specdec_matching")


def markdown_table(results) -> str:
  """One row per K: measured GLS matching (± MC s.e.), exact, LML, SpecInfer, SpecTr.

  Example:
    >>> r = {"K": 2, "gls_matching": 0.5012, "gls_matching_mc_stderr": 0.0011, "gls_exact": 0.5,
    ...      "lml": 0.49, "specinfer_acceptance": 0.52, "spectr_acceptance": 0.53,
    ...      "spectr_exact": 0.531, "single_draft": 0.4}
    >>> print(markdown_table({"records": [r]}))
    | K | GLS measured | GLS exact | LML | exact - LML | SpecInfer | SpecTr (MC) | SpecTr exact | single draft |
    |---|---|---|---|---|---|---|---|---|
    | 2 | 0.5012 ± 0.0011 | 0.5000 | 0.4900 | 0.0100 | 0.5200 | 0.5300 | 0.5310 | 0.4000 |
  """
  recs = _split(results)[0]
  head = ["K", "GLS measured", "GLS exact", "LML", "exact - LML", "SpecInfer", "SpecTr (MC)",
          "SpecTr exact", "single draft"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in recs:
    cells = [str(r["K"]), common.fmt_mean_sem(r["gls_matching"], r.get("gls_matching_mc_stderr"),
                                              4)]
    cells += [f"{r[f]:.4f}" for f in ("gls_exact", "lml")]
    cells.append(f"{r['gls_exact'] - r['lml']:.4f}")
    cells += [f"{r[f]:.4f}" for f in ("specinfer_acceptance", "spectr_acceptance",
                                      "spectr_exact", "single_draft")]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def diverse_table(results) -> str:
  """One row per diverse point: GLS measured / exact, LML, SpecInfer in both row orders.

  Example:
    >>> r = {"draft_temperatures": [0.5, 1.0], "gls_matching": 0.301, "gls_matching_mc_stderr":
    ...      0.001, "gls_exact": 0.3, "lml": 0.29, "specinfer_acceptance": 0.32,
    ...      "specinfer_acceptance_mc_stderr": 0.001, "specinfer_exact": 0.321,
    ...      "specinfer_exact_swapped": 0.33, "single_draft": 0.2}
    >>> print(diverse_table({"records": [r]}))
    | drafter T | GLS measured | GLS exact | LML | SpecInfer measured | SpecInfer exact | SpecInfer, rows swapped | first row alone |
    |---|---|---|---|---|---|---|---|
    | (0.5, 1.0) | 0.3010 ± 0.0010 | 0.3000 | 0.2900 | 0.3200 ± 0.0010 | 0.3210 | 0.3300 | 0.2000 |
  """
  head = ["drafter T", "GLS measured", "GLS exact", "LML", "SpecInfer measured",
          "SpecInfer exact", "SpecInfer, rows swapped", "first row alone"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in _split(results)[1]:
    cells = [_pair_label(r),
             common.fmt_mean_sem(r["gls_matching"], r.get("gls_matching_mc_stderr"), 4)]
    cells += [f"{r[f]:.4f}" for f in ("gls_exact", "lml")]
    cells.append(common.fmt_mean_sem(r["specinfer_acceptance"],
                                     r.get("specinfer_acceptance_mc_stderr"), 4))
    cells += [f"{r[f]:.4f}" for f in ("specinfer_exact", "specinfer_exact_swapped",
                                      "single_draft")]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _body(results) -> str:
  iid, diverse = _split(results)
  parts = [markdown_table(results)] if iid else []
  if diverse:
    parts.append("diverse drafts (one drafter temperature per row):\n\n" + diverse_table(results))
  return "\n\n".join(parts)


def _note(cfg, r0) -> str:
  n = sum(r0["num_positions_per_seed"])
  return (f"{r0['num_prompts']} prompts x {r0['num_seeds']} seeds, {n} positions of target "
          f"continuations ({cfg['max_new_tokens']} new tokens), T = {cfg['temperature']}, top-k "
          f"{cfg['top_k']}, drafter {cfg['drafter']}; Monte Carlo: {r0['num_mc_samples']} "
          "samples per position (± = its standard error; the SEM over seeds, which includes the "
          "variation of the sampled continuations, is in results.json)")


def tables(results, *args) -> str:
  """Prints the matching table (mean over positions, then over seeds)."""
  return common.printed_tables(results, args, _note, _body)


def main(argv=None) -> int:
  """``python -m lcoupling.studies.specdec_matching WORKDIR_OR_RESULTS_JSON``: prints the table."""
  return common.study_main("specdec_matching", tables, argv)


if __name__ == "__main__":
  sys.exit(main())
