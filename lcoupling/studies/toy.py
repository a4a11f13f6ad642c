# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The toy study: token-level acceptance on random pairs, and coupling vs d_TV.

Two parts (sweep points):

* ``{"part": "acceptance", "K": K}`` -- for ``num_pairs`` random pairs
  ``p, q ~ Dirichlet(alpha)`` on ``alphabet_size`` symbols (the same pairs for
  every K), Monte-Carlo acceptance of the token-level verifiers
  (:mod:`lcoupling.verifiers`: GLS, SpecInfer, SpecTr with i.i.d. drafts from
  ``p``), and the exact quantities of :mod:`lcoupling.bounds`: the exact GLS
  acceptance, the list matching lemma (LML) and the optimum ``alpha*``.
  Records: one per (K, method) with the mean over pairs, its SEM over pairs and,
  for Monte-Carlo methods, the Monte-Carlo standard error of that mean.
* ``{"part": "coupling"}`` -- ``num_coupling_pairs`` pairs whose Dirichlet
  concentration sweeps a log grid (so d_TV covers (0, 1)); per pair the
  Monte-Carlo match probability of the Gumbel and weighted-MinHash couplings, the
  exact values, the Daliri bound ``(1 - d)/(1 + d)`` and ``1 - d``.

Randomness: pair ``i`` uses ``fold_in(fold_in(key, PAIRS), i)``; Monte-Carlo
sample ``t`` of list size ``K`` uses ``fold_in(fold_in(fold_in(key, MC), K), t)``
then ``fold_in(., pair)`` and ``fold_in(., MC_METHODS.index(method))`` (a fixed
id per method, not its position in ``config.methods``) -- nothing depends on
the chunking, the device count, the order of the sweep or which other methods
run.

Tables: ``python -m lcoupling.studies.toy WORKDIR`` prints the acceptance table
(:func:`markdown_table`) and the coupling summary (:func:`coupling_table`).

Reproduces the toy study of Rowan et al. (2025) (acceptance of GLS, SpecInfer,
SpecTr vs the optimum, N = 10, K = 1..20) and the coupling figure of Daliri et
al. (arXiv:2408.07978).
"""

from __future__ import annotations

import functools
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling import bounds, core, parallel, plotting, verifiers
from lcoupling.studies import common
from lcoupling.validation import check_int, check_positive, check_range

__all__ = ["validate", "run_point", "summarize", "plot", "random_pairs", "MC_METHODS",
           "EXACT_METHODS", "markdown_table", "coupling_table", "tables", "main"]

#: Monte-Carlo verifiers (names of :func:`lcoupling.verifiers.get`). A method's
#: index here is its random stream: append new methods, never reorder.
MC_METHODS = ("gls", "specinfer", "spectr")
#: Exact quantities per (pair, K).
EXACT_METHODS = ("gls_exact", "lml", "optimum")

_PAIRS, _MC, _COUPLING_PAIRS, _COUPLING_MC = 0, 1, 2, 3


def validate(config) -> None:
  if config.alphabet_size < 2:
    raise ValueError(f"config.alphabet_size must be >= 2, got {config.alphabet_size}")
  if config.alphabet_size > 16:
    raise ValueError("config.alphabet_size must be <= 16 (the optimum alpha* enumerates all "
                     f"2**N subsets), got {config.alphabet_size}")
  for field in ("num_pairs", "num_samples", "num_coupling_pairs", "coupling_samples"):
    check_int(config, field, 1)
  ks = tuple(config.num_drafts)
  if not ks:
    raise ValueError("config.num_drafts must list at least one list size K")
  for k in ks:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
      raise ValueError(f"config.num_drafts must hold ints >= 1, got {k!r}")
  unknown = set(config.methods) - set(MC_METHODS)
  if unknown:
    raise ValueError(f"config.methods: unknown {sorted(unknown)}; choose from {MC_METHODS}")
  check_positive(config.dirichlet_alpha, "dirichlet_alpha")
  check_range(config, "coupling_alpha_range", minimum=0, strict=True)


def random_pairs(key, num_pairs: int, alphabet_size: int, alpha) -> tuple[jax.Array, jax.Array]:
  """``num_pairs`` pairs ``(p, q)`` of ``Dirichlet(alpha)`` vectors (pair ``i`` from ``fold_in(key, i)``).

  ``alpha`` is a scalar or a ``[num_pairs]`` array of concentrations.
  """
  alpha = jnp.broadcast_to(jnp.asarray(alpha, jnp.float32), (num_pairs,))

  def one(i, a):
    kp, kq = jax.random.split(jax.random.fold_in(key, i))
    conc = jnp.full((alphabet_size,), a)
    return jax.random.dirichlet(kp, conc), jax.random.dirichlet(kq, conc)

  return jax.vmap(one)(jnp.arange(num_pairs, dtype=jnp.uint32), alpha)


def _acceptance_trial(trial_key, trial, p_logits, q_logits, *, num_drafts, methods):
  del trial

  def pair(i, lp, lq):
    k_pair = jax.random.fold_in(trial_key, i)
    out = []
    for name in methods:
      v = verifiers.get(name)
      k = jax.random.fold_in(k_pair, MC_METHODS.index(name))  # a fixed id, not the position
      drafts = v.draft(k, lp, num_drafts)
      _, accepted, _ = v.verify(k, drafts, lp, lq)
      out.append(accepted)
    return jnp.stack(out)

  idx = jnp.arange(p_logits.shape[0], dtype=jnp.uint32)
  return jax.vmap(pair)(idx, p_logits, q_logits)  # [pairs, methods] bool


def _coupling_trial(trial_key, trial, p_logits, q_logits):
  del trial

  def pair(i, lp, lq):
    k = jax.random.fold_in(trial_key, i)
    xg, yg = core.gumbel_coupling(jax.random.fold_in(k, 0), lp, lq)
    xm, ym = core.weighted_minhash_coupling(jax.random.fold_in(k, 1), lp, lq)
    return jnp.stack([xg == yg, xm == ym])

  idx = jnp.arange(p_logits.shape[0], dtype=jnp.uint32)
  return jax.vmap(pair)(idx, p_logits, q_logits)  # [pairs, 2] bool


def _count(fn, key, num_samples, chunk_size, mesh, args, progress, desc):
  """Sums boolean per-trial outputs over trials (float64, on the host)."""
  total = None
  bar = parallel.progress_bar(num_samples, desc, enabled=progress)
  for chunk in parallel.iterate_trials(fn, key, num_samples, chunk_size=chunk_size, mesh=mesh,
                                       args=args):
    s = chunk.sum(axis=0, dtype=np.float64)
    total = s if total is None else total + s
    bar.update(len(chunk))
  bar.close()
  return total


def _acceptance_point(key, config, num_drafts, mesh, progress):
  n, num_pairs, s = config.alphabet_size, config.num_pairs, config.num_samples
  p, q = random_pairs(jax.random.fold_in(key, _PAIRS), num_pairs, n, config.dirichlet_alpha)
  methods = tuple(config.methods)
  fn = functools.partial(_acceptance_trial, num_drafts=num_drafts, methods=methods)
  mc_key = jax.random.fold_in(jax.random.fold_in(key, _MC), num_drafts)
  counts = _count(fn, mc_key, s, config.chunk_size, mesh, (core.safe_log(p), core.safe_log(q)),
                  progress, f"K={num_drafts}")
  acc = counts / s  # [pairs, methods]
  records = []
  for m, name in enumerate(methods):
    a = acc[:, m]
    records.append({
        "part": "acceptance", "K": num_drafts, "method": name, "kind": "monte_carlo",
        "acceptance": float(a.mean()), "acceptance_sem": common.mean_sem(a)[1],
        "mc_stderr": float(np.sqrt(np.sum(a * (1 - a) / s)) / num_pairs),
        "num_pairs": num_pairs, "num_samples": s,
    })
  exact = {
      "gls_exact": jax.vmap(lambda a, b: bounds.gls_acceptance_probability(a, b, num_drafts)),
      "lml": jax.vmap(lambda a, b: bounds.list_matching_lemma(a, b, num_drafts)),
      "optimum": jax.vmap(lambda a, b: bounds.optimal_acceptance(a, b, num_drafts)),
  }
  for name, f in exact.items():
    a = np.asarray(jax.jit(f)(p, q), np.float64)
    records.append({
        "part": "acceptance", "K": num_drafts, "method": name,
        "kind": "bound" if name == "lml" else "exact",
        "acceptance": float(a.mean()), "acceptance_sem": common.mean_sem(a)[1],
        "num_pairs": num_pairs,
    })
  return records


def _coupling_point(key, config, mesh, progress):
  n, num_pairs, s = config.alphabet_size, config.num_coupling_pairs, config.coupling_samples
  lo, hi = config.coupling_alpha_range
  alpha = np.geomspace(lo, hi, num_pairs)
  p, q = random_pairs(jax.random.fold_in(key, _COUPLING_PAIRS), num_pairs, n, alpha)
  counts = _count(_coupling_trial, jax.random.fold_in(key, _COUPLING_MC), s, config.chunk_size,
                  mesh, (core.safe_log(p), core.safe_log(q)), progress, "coupling")
  match = counts / s
  d = np.asarray(jax.vmap(bounds.total_variation)(p, q), np.float64)
  g_exact = np.asarray(jax.vmap(bounds.gumbel_match_probability)(p, q), np.float64)
  m_exact = np.asarray(jax.vmap(bounds.weighted_minhash_match_probability)(p, q), np.float64)
  records = []
  for i in range(num_pairs):
    records.append({
        "part": "coupling", "pair": i, "dirichlet_alpha": float(alpha[i]), "d_tv": d[i],
        "gumbel": match[i, 0], "gumbel_stderr": _binomial_se(match[i, 0], s),
        "gumbel_exact": g_exact[i],
        "minhash": match[i, 1], "minhash_stderr": _binomial_se(match[i, 1], s),
        "minhash_exact": m_exact[i],
        "daliri_bound": (1 - d[i]) / (1 + d[i]), "maximal": 1 - d[i], "num_samples": s,
    })
  return records


def _binomial_se(p, n) -> float:
  return float(np.sqrt(p * (1 - p) / n))


def run_point(key, config, point, *, mesh=None, progress=False) -> list[dict]:
  mesh = parallel.trial_mesh() if mesh is None else mesh
  if point["part"] == "acceptance":
    return _acceptance_point(key, config, int(point["K"]), mesh, progress)
  if point["part"] == "coupling":
    return _coupling_point(key, config, mesh, progress)
  raise ValueError(f"unknown toy sweep point {point!r}")


def summarize(config, point_records) -> list[dict]:
  del config
  return [r for recs in point_records for r in recs]


# --------------------------------------------------------------------------
# Figures (from results.json only).
# --------------------------------------------------------------------------

_STYLE = {
    "optimum": dict(color="k", ls="-", label=r"optimum $\alpha^*$"),
    "gls_exact": dict(color="C0", ls="-", label="GLS (exact)"),
    "lml": dict(color="C0", ls="--", label="list matching lemma"),
    "gls": dict(color="C0", marker="o", ls="none", label="GLS (Monte-Carlo)"),
    "specinfer": dict(color="C1", marker="s", ls=":", label="SpecInfer (Monte-Carlo)"),
    "spectr": dict(color="C2", marker="^", ls=":", label="SpecTr (Monte-Carlo)"),
}


def _series(records, method):
  rows = sorted((r for r in records if r.get("part") == "acceptance" and r["method"] == method),
                key=lambda r: r["K"])
  k = np.array([r["K"] for r in rows])
  y = np.array([r["acceptance"] for r in rows], dtype=float)
  e = np.array([r.get("mc_stderr") or 0.0 for r in rows], dtype=float)
  return k, y, e


def plot(results, figdir) -> list[pathlib.Path]:
  plt = plotting.pyplot()
  figdir = pathlib.Path(figdir)
  records = results["records"]
  cfg = results["meta"]["config"]
  written = []
  if any(r.get("part") == "acceptance" for r in records):
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method, style in _STYLE.items():
      k, y, e = _series(records, method)
      if k.size == 0:
        continue
      if style.get("marker"):
        ax.errorbar(k, y, yerr=2 * e, capsize=2, ms=4, **style)
      else:
        ax.plot(k, y, **style)
    ax.set(xlabel="number of drafts K", ylabel="acceptance probability",
           title=f"{cfg['num_pairs']} random pairs, N = {cfg['alphabet_size']}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    for a in (ax, ax2):
      a.xaxis.set_major_locator(plotting.integer_locator())
    k, exact, _ = _series(records, "gls_exact")
    k2, lml, _ = _series(records, "lml")
    k3, mc, mc_e = _series(records, "gls")
    if k.size and np.array_equal(k, k2):
      ax2.plot(k, exact - lml, "C0-", label="exact GLS - LML")
      if np.array_equal(k, k3):
        ax2.errorbar(k, mc - lml, yerr=2 * mc_e, fmt="o", color="C0", ms=4, capsize=2,
                     label="Monte-Carlo GLS - LML")
      ax2.axhline(0, color="k", lw=0.5)
      ax2.set(xlabel="number of drafts K", ylabel="acceptance gap",
              title="how far the LML is below the exact acceptance")
      ax2.legend(fontsize=8)
      ax2.grid(alpha=0.3)
    fig.tight_layout()
    written += plotting.save(fig, figdir / "toy_acceptance")
  rows = [r for r in records if r.get("part") == "coupling"]
  if rows:
    rows.sort(key=lambda r: r["d_tv"])
    d = np.array([r["d_tv"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    ax.errorbar(d, [r["gumbel"] for r in rows], yerr=[2 * r["gumbel_stderr"] for r in rows],
                fmt="o", ms=3, color="C0", label="Gumbel (Monte-Carlo)")
    ax.plot(d, [r["gumbel_exact"] for r in rows], "x", color="C0", ms=5, label="Gumbel (exact)")
    ax.errorbar(d, [r["minhash"] for r in rows], yerr=[2 * r["minhash_stderr"] for r in rows],
                fmt="s", ms=3, color="C1", label="weighted MinHash (Monte-Carlo)")
    ax.plot(d, [r["minhash_exact"] for r in rows], "x", color="C1", ms=5,
            label="weighted MinHash (exact)")
    grid = np.linspace(0, 1, 101)
    ax.plot(grid, (1 - grid) / (1 + grid), "k--", label=r"$(1-d)/(1+d)$")
    ax.plot(grid, 1 - grid, "k:", label=r"$1-d$ (maximal coupling)")
    ax.set(xlabel=r"$d_{TV}(p, q)$", ylabel="Pr[x = y]",
           title=f"coupling without communication, N = {cfg['alphabet_size']}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    written += plotting.save(fig, figdir / "coupling_vs_dtv")
  return written


_LABELS = {"gls": "GLS (MC)", "gls_exact": "GLS exact", "lml": "LML", "specinfer": "SpecInfer",
           "spectr": "SpecTr", "optimum": "optimum α*"}


def markdown_table(results, ks=None) -> str:
  """Markdown table of the mean acceptance over pairs per K and method.

  GLS (Monte-Carlo) is shown with the Monte-Carlo standard error of the mean
  (``mc_stderr``); ``ks`` selects rows (default: every K in the results).

  Example:
    >>> recs = [{"part": "acceptance", "K": 2, "method": m, "acceptance": a, "mc_stderr": 0.0003}
    ...         for m, a in (("gls", 0.5726), ("gls_exact", 0.573), ("lml", 0.563))]
    >>> print(markdown_table({"records": recs}))
    | K | GLS (MC) | GLS exact | LML |
    |---|---|---|---|
    | 2 | 0.5726 ± 0.0003 | 0.573 | 0.563 |
  """
  records = [r for r in common.records(results) if r.get("part") == "acceptance"]
  methods = [m for m in _LABELS if any(r["method"] == m for r in records)]
  present = sorted({r["K"] for r in records})
  ks = present if ks is None else ([k for k in ks if k in present] or present)
  val = {(r["K"], r["method"]): r for r in records}
  lines = ["| K | " + " | ".join(_LABELS[m] for m in methods) + " |",
           "|---|" + "---|" * len(methods)]
  for k in ks:
    cells = []
    for m in methods:
      r = val.get((k, m))
      if r is None or r.get("acceptance") is None:
        cells.append("–")
      elif m == "gls":
        cells.append(common.fmt_mean_sem(r["acceptance"], r.get("mc_stderr"), 4))
      else:
        cells.append(f"{r['acceptance']:.3f}")
    lines.append(f"| {k} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def coupling_table(results, edges=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0)) -> str:
  """Markdown summary of the coupling part: mean match probabilities per d_TV bin.

  One row per bin of ``d_TV(p, q)`` (pairs, mean Gumbel / weighted-MinHash
  match probability, Monte-Carlo and exact, and the two references
  ``(1 - d)/(1 + d)`` and ``1 - d``), then one line of checks: on how many
  pairs the exact Gumbel match is >= the MinHash one, and how many Monte-Carlo
  values are within 4 standard errors of the exact ones. Empty if the results
  have no coupling part.
  """
  rows = [r for r in common.records(results) if r.get("part") == "coupling"]
  if not rows:
    return ""
  d = np.array([r["d_tv"] for r in rows], float)
  head = ["d_TV", "pairs", "Gumbel (MC)", "Gumbel exact", "MinHash (MC)", "MinHash exact",
          "(1-d)/(1+d)", "1-d"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  fields = ("gumbel", "gumbel_exact", "minhash", "minhash_exact", "daliri_bound", "maximal")
  for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
    last = i == len(edges) - 2
    sel = [r for r, x in zip(rows, d) if lo <= x < hi or (last and x == hi)]
    if not sel:
      continue
    means = [np.mean([r[f] for r in sel]) for f in fields]
    lines.append(f"| {lo:.1f}–{hi:.1f} | {len(sel)} | " + " | ".join(f"{m:.3f}" for m in means)
                 + " |")

  def within(f):  # binomial SE at the exact value (at least 1/n, for exact values near 0 or 1)
    return sum(abs(r[f] - r[f + "_exact"]) <= 4 * max(
        np.sqrt(r[f + "_exact"] * (1 - r[f + "_exact"]) / r["num_samples"]), 1 / r["num_samples"])
               for r in rows)

  ge = sum(r["gumbel_exact"] >= r["minhash_exact"] - 1e-6 for r in rows)
  n = len(rows)
  lines.append("")
  lines.append(f"{n} pairs, {rows[0]['num_samples']} samples each: exact Gumbel >= exact "
               f"MinHash on {ge}/{n}; Monte-Carlo within 4 SE of exact: Gumbel {within('gumbel')}/{n}, "
               f"MinHash {within('minhash')}/{n}")
  return "\n".join(lines)


def tables(results, *args) -> str:
  """Prints the acceptance table and the coupling summary (no extra arguments)."""
  if args:
    raise ValueError(f"unexpected arguments {list(args)}: the toy printer takes only the results")
  out = []
  if any(r.get("part") == "acceptance" for r in common.records(results)):
    out += ["acceptance (mean over pairs):", "", markdown_table(results)]
  coupling = coupling_table(results)
  if coupling:
    out += ["", "coupling vs d_TV:", "", coupling]
  return "\n".join(out) if out else "no records yet"


def main(argv=None) -> int:
  """``python -m lcoupling.studies.toy WORKDIR_OR_RESULTS_JSON``: prints the tables."""
  return common.study_main("toy", tables, argv)


if __name__ == "__main__":
  sys.exit(main())
