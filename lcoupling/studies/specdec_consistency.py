# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Output consistency when the drafter changes: same seed, drafter temperature 1.0 then 0.5.

Sweep points ``{"scheme": s}`` for ``s`` in ``specinfer``, ``gls``,
``gls_strong``. Every (seed, prompt) is decoded twice with the same key
``fold_in(fold_in(key, seed), prompt)``, ``K`` i.i.d. drafts of length ``L``
from the drafter at temperature ``config.drafter_temperatures[0]`` and then
``[1]`` (the target's temperature and everything else unchanged). Both outputs
are exact samples of the target, so any scheme is *distributionally* the same;
the question is whether the *realised* text changes with the drafter:

* ``specinfer`` reads the drafter's probabilities: a different drafter changes
  acceptances and residual samples, hence the text;
* ``gls`` never reads them, but which drafts are alive (and so the race's
  row minimum) depends on the drafts: the text changes less;
* ``gls_strong`` takes the race minimum over all ``K`` rows: every emitted
  token is a function of the key, the prefix and the target alone, so the two
  texts are identical -- exactly in exact arithmetic. In float32 the
  ``K x (L + 1)`` verification pass and the one-token decode differ by ~1e-6,
  which can flip a race decided by less than that; such flips are counted
  (``num_pairs - num_identical``), not hidden.

Records per scheme: ``rouge1``, ``rouge2``, ``rougeL`` (F-measure of the
``rouge-score`` package between the two decoded continuations, special tokens
skipped; its default tokenizer lowercases and keeps alphanumeric words;
identical texts score 1), ``exact_match`` (identical token sequences), each as
the mean over prompts per seed, then mean +- SEM over seeds; the block
efficiency of each run.

Reproduces Table 9 of Rowan, Phan & Khisti (NeurIPS 2025, arXiv:2506.05632):
``K = 2``, ``L = 4``, same seed, drafter temperature 1.0 then 0.5, ROUGE-1/2/L.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

from lcoupling import acceptance, plotting
from lcoupling.specdec import PAD_ID, metrics
from lcoupling.studies import common
from lcoupling.studies import specdec_common as sc
from lcoupling.validation import check_int, check_names, check_positive, need

__all__ = ["SCHEMES", "METRICS", "validate", "run_point", "summarize", "plot", "rouge_scores",
           "markdown_table", "tables", "main"]

SCHEMES = ("specinfer", "gls", "gls_strong")
METRICS = ("rouge1", "rouge2", "rougeL", "exact_match")
LABELS = acceptance.LABELS


def validate(config) -> None:
  sc.validate_common(config)
  check_names(config, "schemes", SCHEMES)
  check_int(config, "num_drafts", 1)
  check_int(config, "draft_length", 1)
  check_positive(config.temperature, "temperature")
  temps = tuple(config.drafter_temperatures)
  need(len(temps) == 2, f"config.drafter_temperatures must hold two temperatures (first "
       f"run, second run), got {temps!r}")
  for t in temps:
    check_positive(t, "drafter_temperatures")


def rouge_scores(a: str, b: str, scorer=None) -> dict:
  """ROUGE-1/2/L F-measures between two texts (1.0 for identical texts, even empty ones).

  Example:
    >>> s = rouge_scores("return a + b", "return a - b")
    >>> round(s["rouge1"], 3), s["rougeL"] == s["rouge1"]
    (1.0, True)
    >>> rouge_scores("", "")["rouge2"]
    1.0
  """
  if a == b:
    return {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
  if scorer is None:
    from rouge_score import rouge_scorer  # noqa: PLC0415

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
  s = scorer.score(a, b)
  return {k: float(s[k].fmeasure) for k in ("rouge1", "rouge2", "rougeL")}


def _text(tokenizer, tokens) -> str:
  tokens = [int(t) for t in tokens if t != PAD_ID]
  tokens = [t for t in tokens if t < tokenizer.vocab_size]  # model rows past the tokenizer
  return tokenizer.decode(tokens, skip_special_tokens=True)


def run_point(key, config, point, *, mesh=None, progress=False) -> list[dict]:
  from rouge_score import rouge_scorer  # noqa: PLC0415

  del mesh
  scheme = point["scheme"]
  if scheme not in SCHEMES:
    raise ValueError(f"specdec_consistency: invalid sweep point {point!r}")
  loaded = sc.load_target(config)
  drafter = sc.load_drafter(config, loaded, progress=progress)
  prompts = sc.load_prompts(config, loaded.tokenizer)
  seeds = list(range(config.num_seeds))
  k = config.num_drafts
  runs = []
  for t in config.drafter_temperatures:
    runs.append(sc.generate_batch(
        key, config, loaded.model, drafter, prompts, seeds, scheme=scheme, num_drafts=k,
        draft_length=config.draft_length, temperature=config.temperature,
        draft_temperatures=(float(t),) * k, eos=sc.eos_id(config, loaded), progress=progress,
        desc=f"{scheme} drafter T={t}"))
  a, b = runs
  scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
  per = {m: np.zeros((len(seeds), len(prompts.indices))) for m in METRICS}
  examples = []
  for s in range(len(seeds)):
    for i in range(len(prompts.indices)):
      ta, tb = a.tokens[s, i], b.tokens[s, i]
      same = bool(np.array_equal(ta, tb))
      xa, xb = _text(loaded.tokenizer, ta), _text(loaded.tokenizer, tb)
      scores = rouge_scores(xa, xb, scorer)
      for m, v in scores.items():
        per[m][s, i] = v
      per["exact_match"][s, i] = float(same)
      if not same and len(examples) < 2:
        examples.append({"seed": s, "prompt": prompts.indices[i], "first": xa, "second": xb})
  rec = {"scheme": scheme, "K": k, "L": config.draft_length, "temperature": config.temperature,
         "drafter_temperatures": [float(t) for t in config.drafter_temperatures],
         "num_prompts": len(prompts.indices), "num_seeds": len(seeds),
         "num_pairs": int(per["exact_match"].size),
         "num_identical": int(per["exact_match"].sum()),
         "block_efficiency_per_run": [float(metrics.block_efficiency_per_seed(
             r.length, r.num_target_calls).mean()) for r in runs],
         "examples": examples}
  for m in METRICS:
    rec[m + "_per_seed"] = per[m].mean(axis=1).tolist()
  return [rec]


def summarize(config, point_records) -> list[dict]:
  del config
  out = []
  for recs in point_records:
    for r in recs:
      r = dict(r)
      for m in METRICS:
        r[m], r[m + "_sem"] = sc.seed_stats(r[m + "_per_seed"])
      out.append(r)
  order = {s: i for i, s in enumerate(SCHEMES)}
  return sorted(out, key=lambda r: order.get(r["scheme"], 99))


def plot(results, figdir) -> list[pathlib.Path]:
  plt = plotting.pyplot()
  recs = common.records(results)
  cfg = results["meta"]["config"]
  fig, ax = plt.subplots(figsize=(8.5, 4.2))
  x = np.arange(len(METRICS))
  width = 0.8 / max(len(recs), 1)
  colors = {"specinfer": "C1", "gls": "C0", "gls_strong": "C9"}
  for j, r in enumerate(recs):
    ax.bar(x + (j - (len(recs) - 1) / 2) * width, [r[m] for m in METRICS], width,
           yerr=[r.get(m + "_sem") or 0.0 for m in METRICS], capsize=2,
           color=colors.get(r["scheme"], "0.5"), label=LABELS.get(r["scheme"], r["scheme"]))
  ax.set_xticks(x, ["ROUGE-1", "ROUGE-2", "ROUGE-L", "exact match"])
  t1, t2 = cfg["drafter_temperatures"]
  ax.set(ylim=(0, 1.05), ylabel="agreement of the two outputs",
         title=f"same seed, drafter T = {t1:g} then {t2:g} (K = {cfg['num_drafts']}, "
               f"L = {cfg['draft_length']})")
  ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
  ax.grid(alpha=0.3, axis="y")
  fig.tight_layout()
  return plotting.save(fig, pathlib.Path(figdir) / "specdec_consistency")


def markdown_table(results) -> str:
  """One row per scheme: ROUGE-1/2/L, exact-match rate (mean ± SEM over seeds), identical pairs.

  Example:
    >>> r = {"scheme": "gls_strong", "rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0,
    ...      "exact_match": 1.0, "num_pairs": 16, "num_identical": 16}
    >>> print(markdown_table({"records": [r]}))
    | scheme | ROUGE-1 | ROUGE-2 | ROUGE-L | exact match | identical pairs |
    |---|---|---|---|---|---|
    | GLS (strong) | 1.000 | 1.000 | 1.000 | 1.000 | 16 / 16 |
  """
  head = ["scheme", "ROUGE-1", "ROUGE-2", "ROUGE-L", "exact match", "identical pairs"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in common.records(results):
    cells = [LABELS.get(r["scheme"], r["scheme"])]
    cells += [common.fmt_mean_sem(r[m], r.get(m + "_sem"), 3) for m in METRICS]
    cells.append(f"{r['num_identical']} / {r['num_pairs']}")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _note(cfg, r0) -> str:
  return (f"{r0['num_prompts']} prompts x {r0['num_seeds']} seeds, {cfg['max_new_tokens']} new "
          f"tokens, K = {cfg['num_drafts']}, L = {cfg['draft_length']}, target T = "
          f"{cfg['temperature']}, drafter {cfg['drafter']} at T = "
          f"{cfg['drafter_temperatures'][0]:g} then {cfg['drafter_temperatures'][1]:g}")


def tables(results, *args) -> str:
  """Prints the consistency table (no extra arguments)."""
  return common.printed_tables(results, args, _note, markdown_table)


def main(argv=None) -> int:
  """``python -m lcoupling.studies.specdec_consistency WORKDIR_OR_RESULTS_JSON``: prints the table."""
  return common.study_main("specdec_consistency", tables, argv)


if __name__ == "__main__":
  sys.exit(main())
