# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Multi-draft speculative decoding with diverse drafts: one drafter at two temperatures.

Sweep points ``{"scheme": s, "draft_temperatures": [t1, t2]}``: ``K = 2``
drafts of length ``L`` (5 in the paper), draft row ``k`` sampled from the
drafter at temperature ``t_k``, the target at ``config.temperature`` (2.0 in
the paper), top-k on both; the schemes that accept different proposals --
``gls``, ``gls_strong`` (drafter invariant) and ``specinfer`` (recursive
rejection, which visits the rows in order) -- at every pair of
``config.temperature_pairs``, and ``sps`` with one draft at
``config.reference_draft_temperature`` as the speed-up reference. (SpecTr is
defined for i.i.d. drafts only.)

Each point measures what :mod:`lcoupling.studies.specdec_iid` does
(block efficiency over every (seed, prompt), batch-1 token rate with its
phase split on ``config.timing_prompts``, speed-up over ``sps``), with the
same keys ``fold_in(fold_in(key, seed), prompt)`` for every scheme and pair:
swapping a pair, ``(a, b)`` vs ``(b, a)``, is a controlled experiment. GLS's
rule is symmetric in the rows (its acceptance depends on the *set* of
proposals), SpecInfer's is not (it tries row 0 first), which the table's
order-gap column shows (:func:`order_gaps`).

Reproduces Tables 2 and 4 of Rowan, Phan & Khisti (NeurIPS 2025,
arXiv:2506.05632).
"""

from __future__ import annotations

import math
import pathlib
import sys

import numpy as np

from lcoupling import acceptance, plotting
from lcoupling.studies import common
from lcoupling.studies import specdec_common as sc
from lcoupling.validation import check_int, check_names, check_positive, is_number, need

__all__ = ["SCHEMES", "validate", "run_point", "summarize", "plot", "order_gaps",
           "markdown_table", "tables", "main"]

#: Schemes at every temperature pair (``sps`` is the single-draft reference).
SCHEMES = ("gls", "gls_strong", "specinfer")
LABELS = acceptance.LABELS


def validate(config) -> None:
  sc.validate_common(config)
  check_names(config, "schemes", SCHEMES, refused=f"choose from {SCHEMES} (spectr needs "
           "i.i.d. drafts; sps is the reference, see config.reference_draft_temperature)")
  check_int(config, "num_drafts", 2)
  check_int(config, "draft_length", 1)
  check_positive(config.temperature, "temperature")
  pairs = tuple(config.temperature_pairs)
  need(len(pairs) > 0, "config.temperature_pairs must not be empty")
  for p in pairs:
    need(isinstance(p, (tuple, list)) and len(p) == config.num_drafts,
         f"config.temperature_pairs: every entry must be a tuple of config.num_drafts = "
         f"{config.num_drafts} temperatures, got {p!r}")
    for t in p:
      check_positive(t, "temperature_pairs")
  need(len({tuple(p) for p in pairs}) == len(pairs),
       f"config.temperature_pairs has duplicates: {pairs}")
  ref = config.reference_draft_temperature
  need(is_number(ref) and math.isfinite(ref) and ref >= 0,
    f"config.reference_draft_temperature must be > 0 (0: no sps reference), got {ref!r}")


def run_point(key, config, point, *, mesh=None, progress=False) -> list[dict]:
  del mesh
  scheme, temps = point["scheme"], tuple(float(t) for t in point["draft_temperatures"])
  if scheme == "sps":
    k = 1
  elif scheme in SCHEMES:
    k = config.num_drafts
  else:
    raise ValueError(f"specdec_diverse: invalid sweep point {point!r}")
  if len(temps) != k:
    raise ValueError(f"specdec_diverse: sweep point {point!r} needs {k} temperatures")
  rec = sc.specdec_point(key, config, scheme=scheme, num_drafts=k,
                         draft_length=config.draft_length, temperature=config.temperature,
                         draft_temperatures=temps, progress=progress)
  return [rec]


def summarize(config, point_records) -> list[dict]:
  del config
  return sc.summarize_specdec(point_records, reference_key=lambda r: r["L"])


# --------------------------------------------------------------------------
# Order sensitivity, figures and tables (from results.json only).
# --------------------------------------------------------------------------


def _pair(r):
  return tuple(r["draft_temperatures"])


def _fmt_pair(p) -> str:
  """``(0.5, 1.0)``: one decimal at least."""
  return "(" + ", ".join(f"{t:.1f}" if round(t, 1) == t else f"{t:g}" for t in p) + ")"


def order_gaps(results, field: str = "block_efficiency") -> list[dict]:
  """For every pair measured in both orders, ``field(a, b) - field(b, a)`` per scheme.

  The difference is taken seed by seed (the two orders decode with the same
  keys), then mean +- SEM over seeds. Returned as dicts ``{scheme, pair,
  gap, gap_sem}`` with ``pair = (a, b)``, ``a`` the first draft's temperature
  of the first-listed order.
  """
  recs = [r for r in common.records(results) if r["scheme"] in SCHEMES]
  by = {(r["scheme"], _pair(r)): r for r in recs}
  out, seen = [], set()
  for r in recs:
    pair = _pair(r)
    rev = tuple(reversed(pair))
    if rev == pair or (r["scheme"], rev) not in by or (r["scheme"], frozenset(pair)) in seen:
      continue
    seen.add((r["scheme"], frozenset(pair)))
    a, b = r.get(field + "_per_seed") or [], by[(r["scheme"], rev)].get(field + "_per_seed") or []
    m, s = sc.seed_stats([x - y for x, y in zip(a, b)])
    out.append({"scheme": r["scheme"], "pair": list(pair), "gap": m, "gap_sem": s})
  return out


def plot(results, figdir) -> list[pathlib.Path]:
  plt = plotting.pyplot()
  records = common.records(results)
  cfg = results["meta"]["config"]
  pairs = [tuple(p) for p in cfg["temperature_pairs"]]
  schemes = [s for s in SCHEMES if any(r["scheme"] == s for r in records)]
  timed = any(r.get("speedup_vs_sps") is not None for r in records)
  fig, axes = plt.subplots(1, 2 if timed else 1, figsize=(13 if timed else 6.5, 4.2),
                           squeeze=False)
  axes = axes[0]
  width = 0.8 / max(len(schemes), 1)
  x = np.arange(len(pairs))
  by = {(r["scheme"], _pair(r)): r for r in records}
  panels = [(axes[0], "block_efficiency", "block efficiency")]
  if timed:
    panels.append((axes[1], "speedup_vs_sps", "token rate / token rate of SpS"))
  for ax, field, ylabel in panels:
    for i, s in enumerate(schemes):
      y = [by.get((s, p), {}).get(field) for p in pairs]
      e = [by.get((s, p), {}).get(field + "_sem") or 0.0 for p in pairs]
      y = np.array([np.nan if v is None else v for v in y], float)
      ax.bar(x + (i - (len(schemes) - 1) / 2) * width, y, width, yerr=e, capsize=2,
             color={"gls": "C0", "gls_strong": "C9", "specinfer": "C1"}[s], label=LABELS[s])
    ref = [r for r in records if r["scheme"] == "sps" and r.get(field) is not None]
    if ref:
      ax.axhline(ref[0][field], color="k", ls=":",
                 label=f"SpS (K = 1, drafter T = {ref[0]['draft_temperatures'][0]:.1f})")
    ax.set_xticks(x, [_fmt_pair(p) for p in pairs])
    ax.set(xlabel="drafter temperatures (draft 1, draft 2)", ylabel=ylabel)
    ax.grid(alpha=0.3, axis="y")
    lo = np.nanmin([by[k][field] for k in by if by[k].get(field) is not None] or [1.0])
    ax.set_ylim(bottom=min(1.0, lo) * 0.9 if field == "block_efficiency" else 0)
  axes[0].set_title(f"K = {cfg['num_drafts']}, L = {cfg['draft_length']}, target T = "
                    f"{cfg['temperature']}, top-k {cfg['top_k']}", fontsize=9)
  if timed:
    axes[1].set_title("speed-up over single-draft SpS (same L)", fontsize=9)
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  return plotting.save(fig, pathlib.Path(figdir) / "specdec_diverse")


def markdown_table(results) -> str:
  """One row per temperature pair: BE (and speed-up over SpS) of each scheme.

  Example:
    >>> recs = [{"scheme": s, "draft_temperatures": [0.5, 1.0], "block_efficiency": b,
    ...          "block_efficiency_sem": 0.01} for s, b in (("gls", 1.6), ("specinfer", 1.5))]
    >>> print(markdown_table({"records": recs}))
    | drafter T | GLS BE | SpecInfer BE | GLS speed-up | SpecInfer speed-up |
    |---|---|---|---|---|
    | (0.5, 1.0) | 1.600 ± 0.010 | 1.500 ± 0.010 | – | – |
  """
  records = common.records(results)
  schemes = [s for s in SCHEMES if any(r["scheme"] == s for r in records)]
  pairs = list(dict.fromkeys(_pair(r) for r in records if r["scheme"] in SCHEMES))
  by = {(r["scheme"], _pair(r)): r for r in records}
  head = (["drafter T"] + [f"{LABELS[s]} BE" for s in schemes]
          + [f"{LABELS[s]} speed-up" for s in schemes])
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for p in pairs:
    row = [_fmt_pair(p)]
    for field, digits in (("block_efficiency", 3), ("speedup_vs_sps", 2)):
      for s in schemes:
        r = by.get((s, p), {})
        row.append(common.fmt_mean_sem(r.get(field), r.get(field + "_sem"), digits))
    lines.append("| " + " | ".join(row) + " |")
  for r in records:
    if r["scheme"] == "sps":
      lines.append("")
      lines.append(f"SpS reference (K = 1, drafter T = {r['draft_temperatures'][0]:g}): BE "
                   f"{common.fmt_mean_sem(r.get('block_efficiency'), r.get('block_efficiency_sem'), 3)}, "
                   f"TR {common.fmt_mean_sem(r.get('token_rate'), r.get('token_rate_sem'), 1)} tok/s")
  return "\n".join(lines)


def gap_table(results) -> str:
  """Order sensitivity: BE(a, b) - BE(b, a) per scheme, seed-paired mean ± SEM."""
  gaps = order_gaps(results)
  if not gaps:
    return ""
  schemes = [s for s in SCHEMES if any(g["scheme"] == s for g in gaps)]
  pairs = list(dict.fromkeys(tuple(g["pair"]) for g in gaps))
  by = {(g["scheme"], tuple(g["pair"])): g for g in gaps}
  head = ["BE(a, b) - BE(b, a)"] + [LABELS[s] for s in schemes]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for p in pairs:
    cells = [common.fmt_mean_sem(by[(s, p)]["gap"], by[(s, p)]["gap_sem"], 3)
             if (s, p) in by else "–" for s in schemes]
    lines.append(f"| (a, b) = {_fmt_pair(p)} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _note(cfg, r0) -> str:
  return (f"{r0['num_prompts']} prompts x {r0['num_seeds']} seeds, {cfg['max_new_tokens']} new "
          f"tokens, K = {cfg['num_drafts']}, L = {cfg['draft_length']}, target T = "
          f"{cfg['temperature']}, top-k {cfg['top_k']}, drafter {cfg['drafter']}")


def _body(results) -> str:
  out = [markdown_table(results)]
  gaps = gap_table(results)
  if gaps:
    out += ["", "draft-order sensitivity (same keys, seed-paired):", "", gaps]
  return "\n".join(out)


def tables(results, *args) -> str:
  """Prints the BE / speed-up table per temperature pair and the order-gap table."""
  return common.printed_tables(results, args, _note, _body)


def main(argv=None) -> int:
  """``python -m lcoupling.studies.specdec_diverse WORKDIR_OR_RESULTS_JSON``: prints the tables."""
  return common.study_main("specdec_diverse", tables, argv)


if __name__ == "__main__":
  sys.exit(main())
