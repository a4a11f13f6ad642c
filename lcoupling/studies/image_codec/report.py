# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tables, figures and the printer of the image compression study (from ``results.json`` only).

``python -m lcoupling.studies.mnist WORKDIR`` (or ``.cifar10``, or
``python -m lcoupling.studies.image_codec WORKDIR`` for either) prints the tables
of a run (:func:`tables`, through :func:`lcoupling.studies.common.study_main`); it
refuses a ``results.json`` of another study with one line naming the file. MSEs
are on ``[0, 1]`` pixels (``mse_*``) unless a field ends in ``_pm1``.
"""

from __future__ import annotations

import math
import pathlib
import sys

import numpy as np

from lcoupling import plotting
from lcoupling.studies import common
from lcoupling.studies.image_codec.evaluation import SCHEME_NAMES, decode_hex

__all__ = ["PAPER_MSE_K1", "PAPER_ANCHORS", "STUDY_NAMES", "paper_anchor", "plot",
           "markdown_table", "reference_table", "tables", "main"]

#: The paper's MNIST K = 1 best MSE (GLS; baseline equal) at L_max = 4..64, on [0, 1] pixels.
PAPER_MSE_K1 = {4: 0.1027, 8: 0.0942, 16: 0.0852, 32: 0.0766, 64: 0.0693}
#: Paper anchors per dataset (``None``: not transcribed into this repository).
PAPER_ANCHORS = {"mnist": PAPER_MSE_K1, "cifar10": None}
#: The registry names of this study (``meta.study`` of its results).
STUDY_NAMES = ("mnist", "cifar10")
_TITLES = {"mnist": "MNIST", "cifar10": "CIFAR-10"}


def paper_anchor(dataset: str) -> dict | None:
  """``{L_max: paper K = 1 MSE}`` of ``dataset`` (``None`` if not available)."""
  return PAPER_ANCHORS.get(dataset)


def _dataset(results) -> str:
  if isinstance(results, dict):
    cfg = (results.get("meta") or {}).get("config") or {}
    return cfg.get("dataset", "mnist")
  return "mnist"


def _cells(recs, which="selected"):
  cells = [r for r in recs if r.get("kind", "cell") == "cell"]
  if which == "selected":
    return [r for r in cells if r.get("selected")]
  if which == "fixed":
    return [r for r in cells if r.get("fixed_slice")]
  raise ValueError(f"which must be 'selected' or 'fixed', got {which!r}")


def _anchor_of(cells):
  return {r["L_max"]: r["paper_mse_k1"] for r in cells if r.get("paper_mse_k1") is not None}


def plot(results, figdir):
  """R-D curves, per-decoder curves, example reconstructions, training curves (PNG + PDF)."""
  import matplotlib.ticker  # noqa: PLC0415

  plt = plotting.pyplot()
  dataset = _dataset(results)
  title = _TITLES.get(dataset, dataset)
  recs = common.records(results)
  figdir = pathlib.Path(figdir)
  figdir.mkdir(parents=True, exist_ok=True)
  cells = [r for r in recs if r.get("kind", "cell") == "cell"]
  ks = sorted({r["K"] for r in cells})
  anchor = _anchor_of(cells)
  paths = []
  fixed = [r for r in cells if r.get("fixed_slice")]
  fixed_lbl = (f"N={fixed[0]['N']}, β={fixed[0]['beta']:g}" if fixed else "fixed slice")
  styles = (("gls", "o-", "C0", "GLS"), ("baseline", "^--", "C3", "baseline"))
  refs = [r for r in recs if r.get("kind") == "reference"]

  rows = [("mse_best", "selected", "best-of-K MSE, [0,1] pixels\n(selected N, β)"),
          ("mse_best", "fixed", f"best-of-K MSE, [0,1] pixels\n({fixed_lbl})"),
          ("match_prob", "selected", "matching probability\n(selected N, β)")]
  fig, axes = plt.subplots(len(rows), len(ks), figsize=(3.3 * len(ks), 2.7 * len(rows)),
                           squeeze=False, sharex=True)
  for i, (field, which, ylabel) in enumerate(rows):
    sub = _cells(recs, which)
    for j, k in enumerate(ks):
      ax = axes[i][j]
      for scheme, fmt, color, label in styles:
        x, y, e = common.rate_series(sub, scheme, k, field)
        ax.errorbar(x, y, yerr=e, fmt=fmt, color=color, ms=4, capsize=2, label=label)
      if field == "mse_best":
        _reference_lines(ax, refs, k, fixed[0]["beta"] if which == "fixed" and fixed else None)
      if field == "mse_best" and k == 1 and which == "selected" and anchor:
        ax.plot([math.log2(l) for l in sorted(anchor)], [anchor[l] for l in sorted(anchor)], "k+",
                ms=9, label="paper K=1")
      if i == 0:
        ax.set_title(f"K = {k}")
      if i == len(rows) - 1:
        ax.set_xlabel("rate (bits)")
      if j == 0:
        ax.set_ylabel(ylabel, fontsize=8)
      ax.grid(alpha=0.3)
      if j == 0:
        ax.legend(fontsize=6)
  crop = cells[0].get("crop_size") if cells else None
  fig.suptitle(f"{title} right half, K decoders with different left-half crops"
               + (f" ({crop}×{crop})" if crop else ""), fontsize=10)
  fig.tight_layout()
  paths += plotting.save(fig, figdir / f"{dataset}_rd")

  rows = [("mse_mean", "MSE, mean over the K decoders"), ("mse_first", "MSE, decoder 1")]
  sub = _cells(recs, "selected")
  fig, axes = plt.subplots(1, len(rows), figsize=(9, 3.5), squeeze=False)
  for j, (field, name) in enumerate(rows):
    ax = axes[0][j]
    for i, k in enumerate(ks):
      for scheme, fmt, _, label in styles:
        x, y, e = common.rate_series(sub, scheme, k, field)
        ax.errorbar(x, y, yerr=e, fmt=fmt, color=f"C{i}", ms=4, capsize=2,
                    label=f"{'GLS' if scheme == 'gls' else 'BL'} K={k}")
    ax.set_title(name + " (selected N, β)", fontsize=9)
    ax.set_xlabel("rate (bits)")
    ax.set_ylabel("MSE per source value, [0,1] pixels")
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=6, ncol=2)
  fig.tight_layout()
  paths += plotting.save(fig, figdir / f"{dataset}_rd_decoders")

  ex_recs = [r for r in recs if r.get("kind") == "examples"]
  if ex_recs:
    fixed_beta = fixed[0]["beta"] if fixed else None
    ex = next((r for r in ex_recs if r["beta"] == fixed_beta), ex_recs[0])
    paths += _plot_examples(plt, ex, figdir, dataset)

  tr = [r for r in recs if r.get("kind") == "training"]
  if tr:
    fields = [("loss", "total loss"), ("mse", "train MSE, [0,1] pixels"), ("kl", "KL (nats)"),
              ("est_acc", "estimator accuracy")]
    fig, axes = plt.subplots(1, len(fields), figsize=(3.2 * len(fields), 3.0), squeeze=False)
    for ax, (f, name) in zip(axes[0], fields):
      for i, r in enumerate(sorted(tr, key=lambda r: r["beta"])):
        y = np.array([np.nan if v is None else v for v in r.get(f, [])], float)
        ax.plot(r["epoch"], y, "o-", ms=3, color=f"C{i}", label=f"β={r['beta']:g}")
      ax.set_title(name, fontsize=9)
      ax.set_xlabel("epoch")
      ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
      ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    paths += plotting.save(fig, figdir / f"{dataset}_training")
  return paths


def _reference_lines(ax, refs, k, beta=None):
  """Zero-rate references: the mean training image, and w = 0 (best β, or ``beta``)."""
  if not refs:
    return
  ax.axhline(refs[0]["mse_mean_image"], color="0.5", ls=":", lw=1, label="mean image (0 bits)")
  zr = [r["mse_zero_rate"][k - 1] for r in refs
        if len(r["mse_zero_rate"]) >= k and (beta is None or r["beta"] == beta)]
  if zr:
    ax.axhline(min(zr), color="0.3", ls="-.", lw=1, label="w = 0: side info only")


def reference_table(results, suffix: str = "") -> str:
  """Markdown table of the zero-rate references per β (``suffix="_pm1"``: on ``[-1, 1]``)."""
  refs = sorted((r for r in common.records(results) if r.get("kind") == "reference"),
                key=lambda r: r["beta"])
  if not refs:
    return ""
  k_max = max(len(r["mse_zero_rate"]) for r in refs)
  head = ["β", "crop", "mean image"] + [f"w = 0, best of K={k}" for k in range(1, k_max + 1)]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in refs:
    zr = r["mse_zero_rate" + suffix]
    sem = r.get("mse_zero_rate_sem" + suffix) or [None] * len(zr)
    crop = r.get("crop_size")
    lines.append("| " + " | ".join(
        [f"{r['beta']:g}", "–" if crop is None else f"{crop}×{crop}",
         f"{r['mse_mean_image' + suffix]:.4f}"]
        + [common.fmt_mean_sem(v, e, 4) for v, e in zip(zr, sem)]) + " |")
  return "\n".join(lines)


def _plot_examples(plt, ex, figdir, dataset="mnist"):
  """Figure-3-like grid: per example a side-information row, a GLS row and a baseline row."""
  k = int(ex["K"])
  c = int(ex["crop_size"])
  shape = tuple(ex["recon_shape"])
  image_shape = tuple(ex.get("image_shape", (28, 28)))
  half = image_shape[1] // 2
  gray = dict(cmap="gray") if len(image_shape) == 2 else {}
  items = ex["examples"]
  blocks = 2 if len(items) > 1 else 1
  per_block = -(-len(items) // blocks)
  nrow, ncol = 3 * per_block, blocks * (k + 1)
  fig, axes = plt.subplots(nrow, ncol, figsize=(0.95 * ncol + 0.6, 1.3 * nrow), squeeze=False)
  for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_frame_on(False)
  for n, e in enumerate(items):
    blk, pos = divmod(n, per_block)
    rows = axes[3 * pos:3 * pos + 3, blk * (k + 1):(blk + 1) * (k + 1)]
    image = decode_hex(e["image"], image_shape)
    rows[0][0].imshow(image, vmin=0, vmax=255, **gray)
    rows[0][0].axvline(half - 0.5, color="w", lw=0.6, ls=":")
    rows[0][0].set_ylabel(f"test #{e['index']}", fontsize=7)
    rows[1][0].imshow(image[:, half:], vmin=0, vmax=255, **gray)
    rows[1][0].set_ylabel("source", fontsize=7)
    for kk, (r0, c0) in enumerate(e["crop_offsets"]):
      ax = rows[0][1 + kk]
      ax.imshow(image[r0:r0 + c, c0:c0 + c], vmin=0, vmax=255, **gray)
      ax.set_title(f"T{kk + 1} @({r0},{c0})", fontsize=6, pad=1)
    for s, scheme in enumerate(SCHEME_NAMES):
      rec = e[scheme]
      recon = decode_hex(rec["recon"], shape)
      for kk in range(k):
        ax = rows[1 + s][1 + kk]
        ax.imshow(recon[kk], vmin=0, vmax=255, **gray)
        ok = rec["match"][kk]
        color = "tab:green" if ok else "tab:red"
        ax.set_frame_on(True)
        for sp in ax.spines.values():
          sp.set_edgecolor(color)
          sp.set_linewidth(2.0)
        ax.set_title(f"{'ok' if ok else 'miss'} {rec['mse'][kk]:.3f}", fontsize=6, pad=1, color=color)
      rows[1 + s][1].set_ylabel("GLS" if scheme == "gls" else "BL", fontsize=7)
    rows[2][0].text(0.5, 0.5, f"best\nGLS {min(e['gls']['mse']):.3f}\nBL {min(e['baseline']['mse']):.3f}",
                    ha="center", va="center", fontsize=6, transform=rows[2][0].transAxes)
  fig.suptitle(f"β={ex['beta']:g}, N={ex['N']}, K={k}, L_max={ex['L_max']}: row 1 image and the K "
               f"decoders' side information T_k ({c}x{c} crops of the left half); rows 2-3 decoder k's "
               f"reconstruction (GLS, baseline); green = recovered the encoder's codeword, number = "
               f"MSE on [0,1] pixels", fontsize=6.5, wrap=True)
  fig.tight_layout(rect=(0, 0, 1, 0.97), h_pad=0.4, w_pad=0.2)
  return plotting.save(fig, figdir / f"{dataset}_examples")


def markdown_table(results, field: str = "mse_best", which: str = "selected") -> str:
  """Markdown table of ``field`` per ``L_max`` (rows) and scheme × K (columns).

  ``which``: ``"selected"`` (the per-cell (N, β), shown under each value) or
  ``"fixed"`` (the fixed slice). For ``field = "mse_best"`` the first data
  column is the paper's K = 1 MSE (when the records carry it).
  """
  digits = 3 if field.startswith("match") else 4
  annotate = (lambda r: f" (N={r['N']}, β={r['beta']:g})") if which == "selected" else None
  cells = _cells(common.records(results), which)
  anchor = _anchor_of(cells) if field == "mse_best" else {}
  return common.rate_table(cells, field, schemes=SCHEME_NAMES, digits=digits,
                           anchor=anchor or None, annotate=annotate)


def tables(results, *fields) -> str:
  """Markdown tables of FIELD ... (default: mse_best match_prob; any cell field, e.g. mse_mean).

  Each field twice: at the per-cell selection of (N, β) and on the fixed slice;
  then the zero-rate references and the training / evaluation times.
  """
  common.check_fields(results, fields)
  cfg = (results.get("meta") or {}).get("config") or {}
  out = [f"{results.get('name', '')}: {cfg.get('dataset', 'mnist')}, side information "
         f"{cfg.get('crop_size')}×{cfg.get('crop_size')} crops; MSE per source value on [0, 1] "
         f"pixels (fields *_pm1: on [-1, 1], 4x)"]
  for field in fields or ("mse_best", "match_prob"):
    for which in ("selected", "fixed"):
      out += [f"\n{field} ({which}):\n", markdown_table(results, field, which)]
  ref = reference_table(results)
  if ref:
    out += ["\nzero-rate references (MSE per source value on [0, 1] pixels, no message):\n", ref]
  tr = [r for r in results["records"] if r.get("kind") == "training"]
  if tr:
    out.append("\ntraining / evaluation time per beta:")
    out += [f"  beta={r['beta']:g}: train {r['train_seconds']:.0f} s, eval "
            f"{r['eval_seconds']:.0f} s ({r['trials_per_second']:.1f} images x repeats / s)"
            for r in tr]
  meta = results.get("meta", {})
  if meta.get("wall_seconds") is not None:
    out.append(f"\nwall time of the run: {meta['wall_seconds']:.0f} s")
  return "\n".join(out)


def main(argv=None, study=STUDY_NAMES) -> int:
  """``python -m lcoupling.studies.image_codec WORKDIR_OR_RESULTS_JSON [FIELD ...]``.

  ``study``: the study names accepted (``lcoupling.studies.mnist`` passes
  ``"mnist"``, ``lcoupling.studies.cifar10`` ``"cifar10"``).
  """
  prog = "lcoupling.studies.image_codec" if study == STUDY_NAMES else None
  return common.study_main(study, tables, argv, prog=prog)


if __name__ == "__main__":
  sys.exit(main())
