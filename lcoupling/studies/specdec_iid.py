# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Multi-draft speculative decoding with i.i.d. drafts: block efficiency and token rate vs ``K``.

Sweep points ``{"scheme": s, "K": K}``: the single-draft schemes ``sps``
(speculative sampling) and ``daliri`` (its Gumbel-coupling version) at
``K = 1``, the multi-draft schemes ``specinfer``, ``spectr``, ``gls`` and
``gls_strong`` at every ``K >= 2`` of ``config.num_drafts``, and
``autoregressive`` (the target alone; token rate only) as the reference of
what speculative decoding buys on the machine at hand. The multi-draft
schemes are not run at ``K = 1``: there they *are* the single-draft schemes
(``specinfer``, ``spectr`` -> ``sps``: accept with ``min(1, q/p)``, residual
``(q - p)^+``; ``gls``, ``gls_strong`` -> ``daliri``, the same race), so the
rows would repeat ``sps`` / ``daliri``.

Each point decodes every (seed, prompt) with ``K`` i.i.d. drafts of length
``L`` from one drafter (:func:`lcoupling.specdec.generate`, all at the
target's temperature, top-k on both) and measures

* ``block_efficiency``: tokens per target call, bonus included (mean over
  prompts per seed, then mean +- SEM over seeds);
* ``token_rate``: wall-clock decode tokens/s of batch-1 generation on
  ``config.timing_prompts`` (:func:`lcoupling.studies.specdec_common.time_generation`),
  with the draft / target / verify milliseconds per token;
* ``speedup_vs_sps``: the token rate over that of ``sps`` with the same ``L``
  (per seed, then mean +- SEM).

Every scheme decodes prompt ``i`` under seed ``s`` with the key
``fold_in(fold_in(key, s), i)`` (common random numbers).

Reproduces Tables 1 and 3 of Rowan, Phan & Khisti (NeurIPS 2025,
arXiv:2506.05632): i.i.d. drafts, ``K in {2, 4, 6, 8}``, ``L = 4``,
temperature 1, top-k 50.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

from lcoupling import acceptance, plotting
from lcoupling.studies import common
from lcoupling.studies import specdec_common as sc
from lcoupling.validation import check_int, check_int_tuple, check_names, check_positive, need

__all__ = ["SCHEMES", "SINGLE", "MULTI", "validate", "run_point", "summarize", "plot",
           "markdown_table", "tables", "main"]

SINGLE = acceptance.SINGLE_DRAFT
MULTI = ("specinfer", "spectr", "gls", "gls_strong")
#: Schemes this study runs (``autoregressive``: the target alone, token rate only).
SCHEMES = ("autoregressive",) + SINGLE + MULTI


def validate(config) -> None:
  sc.validate_common(config)
  schemes = check_names(config, "schemes", SCHEMES)
  ks = check_int_tuple(config, "num_drafts", 1, allow_empty=False)
  if any(s in MULTI for s in schemes):
    need(any(k >= 2 for k in ks), "config.num_drafts needs a K >= 2 for the multi-draft "
         f"schemes {[s for s in schemes if s in MULTI]} (K = 1 of those is sps / daliri)")
  check_int(config, "draft_length", 1)
  check_positive(config.temperature, "temperature")


def run_point(key, config, point, *, mesh=None, progress=False) -> list[dict]:
  del mesh
  scheme, k = point["scheme"], int(point["K"])
  if scheme not in SCHEMES or (scheme in MULTI) != (k >= 2):
    raise ValueError(f"specdec_iid: invalid sweep point {point!r}")
  rec = sc.specdec_point(key, config, scheme=scheme, num_drafts=k,
                         draft_length=config.draft_length, temperature=config.temperature,
                         progress=progress)
  return [rec]


def summarize(config, point_records) -> list[dict]:
  del config
  return sc.summarize_specdec(point_records, reference_key=lambda r: r["L"])


# --------------------------------------------------------------------------
# Figures and tables (from results.json only).
# --------------------------------------------------------------------------

STYLE = {
    "gls": dict(color="C0", marker="o", label="GLS"),
    "gls_strong": dict(color="C0", marker="o", ls="--", mfc="none", label="GLS (strong)"),
    "specinfer": dict(color="C1", marker="s", label="SpecInfer"),
    "spectr": dict(color="C2", marker="^", label="SpecTr"),
    "sps": dict(color="k", ls=":", label="SpS (K = 1)"),
    "daliri": dict(color="0.5", ls="-.", label="Daliri (K = 1)"),
    "autoregressive": dict(color="C3", ls=(0, (1, 1)), label="autoregressive"),
}
LABELS = acceptance.LABELS


def _series(records, scheme, field):
  rows = sorted((r for r in records if r["scheme"] == scheme and r.get(field) is not None),
                key=lambda r: r["K"])
  k = np.array([r["K"] for r in rows])
  y = np.array([r[field] for r in rows], float)
  e = np.array([r.get(field + "_sem") or 0.0 for r in rows], float)
  return k, y, e


def plot(results, figdir) -> list[pathlib.Path]:
  plt = plotting.pyplot()
  records = common.records(results)
  cfg = results["meta"]["config"]
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  kmax = max([r["K"] for r in records] + [2])
  for ax, field, ylabel in ((axes[0], "block_efficiency", "block efficiency (tokens / target call)"),
                            (axes[1], "speedup_vs_sps", "token rate / token rate of SpS")):
    for scheme, style in STYLE.items():
      k, y, e = _series(records, scheme, field)
      if not k.size:
        continue
      if scheme in MULTI:
        ax.errorbar(k, y, yerr=e, capsize=2, ms=5, **style)
      else:  # one value: a horizontal reference line
        ax.axhline(y[0], **style)
    ax.set(xlabel="number of drafts K", ylabel=ylabel)
    ax.xaxis.set_major_locator(plotting.integer_locator())
    ax.set_xlim(0.5, kmax + 0.5)
    ax.grid(alpha=0.3)
  axes[0].set_title(f"i.i.d. drafts, L = {cfg['draft_length']}, T = {cfg['temperature']}, "
                    f"top-k {cfg['top_k']}", fontsize=9)
  axes[1].set_title("speed-up over single-draft SpS (same L)", fontsize=9)
  axes[0].legend(fontsize=8)
  # time per generated token, split by phase
  rows = sorted((r for r in records if r.get("target_ms_per_token") is not None),
                key=lambda r: (list(STYLE).index(r["scheme"]) if r["scheme"] in STYLE else 99,
                               r["K"]))
  if rows:
    ax = axes[2]
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for phase, color in (("draft", "C4"), ("target", "C5"), ("verify", "C6")):
      v = np.array([r.get(f"{phase}_ms_per_token") or 0.0 for r in rows])
      ax.bar(x, v, bottom=bottom, color=color, label=phase)
      bottom += v
    ax.set_xticks(x, [f"{LABELS.get(r['scheme'], r['scheme'])} {r['K']}" for r in rows],
                  rotation=70, fontsize=7)
    ax.set_ylabel("ms per generated token (batch 1)")
    ax.set_title("where the decode time goes", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
  fig.tight_layout()
  return plotting.save(fig, pathlib.Path(figdir) / "specdec_iid")


def _fmt(r, field, digits):
  return common.fmt_mean_sem(r.get(field), r.get(field + "_sem"), digits)


def markdown_table(results) -> str:
  """One row per (scheme, K): BE, token rate, speed-up over SpS, ms per token by phase.

  Example:
    >>> r = {"scheme": "gls", "K": 2, "L": 4, "block_efficiency": 1.5, "block_efficiency_sem": 0.01,
    ...      "token_rate": 10.0, "token_rate_sem": 0.5, "speedup_vs_sps": 1.1,
    ...      "speedup_vs_sps_sem": 0.02}
    >>> print(markdown_table({"records": [r]}))
    | scheme | K | L | BE | TR (tok/s) | speed-up vs SpS | draft / target / verify ms per token |
    |---|---|---|---|---|---|---|
    | GLS | 2 | 4 | 1.500 ± 0.010 | 10.0 ± 0.5 | 1.10 ± 0.02 | – |
  """
  recs = sorted(common.records(results), key=lambda r: (
      list(STYLE).index(r["scheme"]) if r["scheme"] in STYLE else 99, r["K"]))
  head = ["scheme", "K", "L", "BE", "TR (tok/s)", "speed-up vs SpS",
          "draft / target / verify ms per token"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in recs:
    split = "–"
    if r.get("target_ms_per_token") is not None:
      split = " / ".join(f"{r[f'{p}_ms_per_token']:.0f}" for p in ("draft", "target", "verify"))
    lines.append(f"| {LABELS.get(r['scheme'], r['scheme'])} | {r['K']} | {r['L']} | "
                 f"{_fmt(r, 'block_efficiency', 3)} | {_fmt(r, 'token_rate', 1)} | "
                 f"{_fmt(r, 'speedup_vs_sps', 2)} | {split} |")
  return "\n".join(lines)


def _note(cfg, r0) -> str:
  return (f"{r0['num_prompts']} prompts x {r0['num_seeds']} seeds, {cfg['max_new_tokens']} new "
          f"tokens, T = {cfg['temperature']}, top-k {cfg['top_k']}, drafter {cfg['drafter']}; "
          f"token rate: batch 1 on prompts {list(cfg['timing_prompts'])}, "
          f"{cfg['timing_seeds']} seed(s)")


def tables(results, *args) -> str:
  """Prints the block-efficiency / token-rate table (no extra arguments)."""
  return common.printed_tables(results, args, _note, markdown_table)


def main(argv=None) -> int:
  """``python -m lcoupling.studies.specdec_iid WORKDIR_OR_RESULTS_JSON``: prints the tables."""
  return common.study_main("specdec_iid", tables, argv)


if __name__ == "__main__":
  sys.exit(main())
