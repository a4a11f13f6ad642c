# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Gaussian study: distributed lossy compression with ``K`` decoders (docs/method.md §5.2).

Source :math:`A \sim N(0,1)`; decoder ``k`` sees :math:`T_k = A + N(0,
\sigma^2_{T|A})`; the encoder targets :math:`p_{W|A}(\cdot|a) = N(a,
\sigma^2_{W|A})`, so :math:`p_W = N(0, \sigma^2_W)` with
:math:`\sigma^2_W = 1 + \sigma^2_{W|A}` and, with
:math:`\sigma^2_T = 1 + \sigma^2_{T|A}`,
:math:`p_{W|T}(\cdot|t) = N(t/\sigma^2_T,\ \sigma^2_W - 1/\sigma^2_T)`.
The log weights are quadratics in the codeword ``u`` (constants dropped: they
do not move an argmin):

.. math::
   \log\lambda(u) = -\frac{(u-a)^2}{2\sigma^2_{W|A}} + \frac{u^2}{2\sigma^2_W},\qquad
   \log\mu(u) = -\frac{(u - t/\sigma^2_T)^2}{2 v} + \frac{u^2}{2\sigma^2_W},\quad
   v = \sigma^2_W - 1/\sigma^2_T .

Reconstruction :math:`\hat A = (\sigma^2_{T|A} W + \sigma^2_{W|A} T) /
(\sigma^2_{W|A}\sigma^2_{T|A} + \sigma^2_{T|A} + \sigma^2_{W|A})`; the estimate
of a trial is the best of the ``K`` decoders (oracle). Distortion: the paper's
mean over trials of :math:`10\log_{10}(A-\hat A)^2` (``distortion_db``) and
:math:`10\log_{10}` of the mean squared error (``mse_db``).

**One trial = every cell.** A trial draws ONE standard-normal codebook ``Z``
(the codebook at :math:`\sigma^2_{W|A}` is :math:`U = \sigma_W Z`), one set of
labels on ``0..63``, ``K_max`` race-time rows, the source and the side
information; every :math:`\sigma^2_{W|A}` of the grid, both schemes, every
``K' <= K_max`` and every rate are evaluated on it (common random numbers).
Each decoder's per-bin minima over the 64 fine bins are computed once per
(:math:`\sigma^2`, decoder) and serve every ``K'`` and rate
(:func:`lcoupling.compression.bin_minima`). The results equal the codec
(:mod:`lcoupling.compression`) run separately per cell with the same key.

Keys: ``fold_in(key, repeat)`` then ``fold_in(., phase)`` (0 = selection,
1 = evaluation) then the trial index (:mod:`lcoupling.parallel`); inside a
trial ``fold_in(trial_key, 0)`` is the codec's shared seed and
``fold_in(trial_key, 1)`` the source's.

Reference: Rowan, Phan & Khisti, NeurIPS 2025 (arXiv:2506.05632), §5 Gaussian
experiment; Phan, Khisti & Louizos, AISTATS 2024 (arXiv:2401.02609).
"""

from __future__ import annotations

import functools
import math
import pathlib
import sys
import time
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling import core, plotting
from lcoupling.compression import codec
from lcoupling.studies import common
from lcoupling.validation import check_choice, check_int, need

__all__ = [
    "ANCHOR_DB",
    "SCHEME_NAMES",
    "scaled_normal_prior",
    "quadratic_log_weight",
    "encoder_coeffs",
    "decoder_coeffs",
    "info_bits",
    "reconstruct",
    "trial_indices",
    "trial_outputs",
    "evaluate_trials",
    "validate",
    "run_point",
    "summarize",
    "plot",
    "markdown_table",
]

#: The paper's K = 1 distortion (dB) at L_max = 2, 4, ..., 64.
ANCHOR_DB = {2: -9.70, 4: -12.75, 8: -16.01, 16: -19.55, 32: -23.40, 64: -27.35}
#: Output order of the scheme axis.
SCHEME_NAMES = ("gls", "baseline")
_TINY = np.finfo(np.float32).tiny

# --------------------------------------------------------------------------
# Closed forms.
# --------------------------------------------------------------------------


def scaled_normal_prior(key: jax.Array, num_codewords: int, scale: float) -> jax.Array:
  """``p_W = N(0, scale**2)``: ``scale * normal(key, (N,))`` (a codec ``sample_prior``)."""
  return jnp.float32(scale) * jax.random.normal(key, (num_codewords,), jnp.float32)


def codeword_scales(sigma2_grid) -> jax.Array:
  r"""\sigma_W = \sqrt{1 + \sigma^2_{W|A}} per grid value, rounded once to float32."""
  return jnp.asarray(np.sqrt(1.0 + np.asarray(sigma2_grid, np.float64)).astype(np.float32))


def quadratic_log_weight(u: jax.Array, coeffs) -> jax.Array:
  """``(c2 u + c1) u`` for ``coeffs = (c1, c2)`` (a codec log-weight function)."""
  c1, c2 = coeffs
  return (c2 * u + c1) * u


def encoder_coeffs(a, s2_wa):
  r"""``(c1, c2)`` of :math:`\log p_{W|A}(u|a) - \log p_W(u)` up to a constant."""
  s2_w = 1.0 + s2_wa
  return (jnp.asarray(a / s2_wa, jnp.float32),
          jnp.asarray(-0.5 / s2_wa + 0.5 / s2_w, jnp.float32))


def decoder_coeffs(t, s2_wa, s2_ta):
  r"""``(c1, c2)`` of :math:`\log p_{W|T}(u|t) - \log p_W(u)` up to a constant."""
  s2_w, s2_t = 1.0 + s2_wa, 1.0 + s2_ta
  v = s2_w - 1.0 / s2_t
  return (jnp.asarray(t / (s2_t * v), jnp.float32),
          jnp.asarray(-0.5 / v + 0.5 / s2_w, jnp.float32))


def info_bits(w, a, t, s2_wa, s2_ta):
  r""":math:`i(w;a|t) = \log_2 p_{W|A}(w|a) - \log_2 p_{W|T}(w|t)` (bits)."""
  s2_w, s2_t = 1.0 + s2_wa, 1.0 + s2_ta
  v = s2_w - 1.0 / s2_t
  nats = (-0.5 * (w - a) ** 2 / s2_wa + 0.5 * (w - t / s2_t) ** 2 / v
          - 0.5 * jnp.log(jnp.float32(s2_wa / v)))
  return nats / math.log(2.0)


def reconstruct(w, t, s2_wa, s2_ta):
  """MMSE estimate of ``A`` from ``W`` and ``T``."""
  return (s2_ta * w + s2_wa * t) / (s2_wa * s2_ta + s2_ta + s2_wa)


# --------------------------------------------------------------------------
# One trial.
# --------------------------------------------------------------------------


def _source(key, k_max, s2_ta):
  a = jax.random.normal(jax.random.fold_in(key, 0), (), jnp.float32)
  eps = jnp.stack([jax.random.normal(jax.random.fold_in(key, 1 + k), (), jnp.float32)
                   for k in range(k_max)])
  return a, a + jnp.float32(math.sqrt(s2_ta)) * eps


def trial_indices(key, *, num_codewords, max_bins, num_decoders, rates, sigma2_grid,
                  sigma2_t_given_a, capacity):
  """Indices of one trial for every cell (the blocked, shared computation).

  Returns a dict: ``gls_enc int32[S, K]`` (encoder index for ``K' = 1..K``),
  ``gls_dec int32[S, K', R, k]``, ``bl_enc int32[S]``, ``bl_dec int32[S, R, k]``,
  ``prior_gls int32[S, K', R, k]``, ``prior_bl int32[S, R]`` (decoders with
  weights 1, i.e. no side information), plus ``z`` (the codebook), ``a``, ``t``
  and ``overflow``. ``S`` indexes ``sigma2_grid``.
  """
  n, k_max = num_codewords, num_decoders
  ck, sk = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
  z = jax.random.normal(jax.random.fold_in(ck, codec.CODEBOOK_STREAM), (n,), jnp.float32)
  counts = codec.bin_counts(jax.random.fold_in(ck, codec.LABEL_STREAM), n, max_bins)
  log_s = core.log_race_times(jax.random.fold_in(ck, codec.RACE_STREAM), (k_max, n))
  a, t = _source(sk, k_max, sigma2_t_given_a)
  layout = codec.race_layout(log_s, counts, capacity)  # shared by every sigma2
  z_pad = z[layout.index]
  zeros = jnp.zeros_like(z_pad)
  p_min, p_win = jax.vmap(codec.bin_minima, in_axes=(0, None, None))(layout.padded, zeros,
                                                                     layout.index)

  def per_sigma2(args):
    s2, sw = args
    lam = quadratic_log_weight(sw * z, encoder_coeffs(a, s2))
    u_pad = sw * z_pad
    mu = jax.vmap(lambda tk: quadratic_log_weight(u_pad, decoder_coeffs(tk, s2, sigma2_t_given_a)))(t)
    r = codec.nested_decisions(layout, lam, mu, rates)
    lab = jnp.searchsorted(layout.ends, r.gls_encoder, side="right").astype(jnp.int32)  # [K']
    prior_gls = jax.vmap(
        lambda l: jnp.swapaxes(codec.coset_winners(p_min, p_win, l, rates), 0, 1))(lab)
    prior_bl = codec.coset_winners(p_min[0], p_win[0], lab[0], rates)  # [R]
    return (r.gls_encoder, r.gls_decoder, r.baseline_encoder, r.baseline_decoder, prior_gls,
            prior_bl)

  outs = jax.lax.map(per_sigma2, (jnp.asarray(sigma2_grid, jnp.float32), codeword_scales(sigma2_grid)))
  names = ("gls_enc", "gls_dec", "bl_enc", "bl_dec", "prior_gls", "prior_bl")
  res = dict(zip(names, outs))
  res.update(z=z, a=a, t=t, overflow=layout.overflow)
  return res


def trial_outputs(key, index=None, *, num_codewords, max_bins, num_decoders, rates, sigma2_grid,
                  sigma2_t_given_a, capacity):
  r"""Per-trial measurements for every cell; the function the trials are mapped over.

  Returns ``sq, match, match_prior, bound float32[S, 2, K, R]`` (scheme axis
  ``SCHEME_NAMES``, ``K'`` axis, rate axis) and ``overflow bool[]``:
  best-of-``K'`` squared error, any-decoder match, match of the prior-only
  decoders (no side information) and the bound's success term
  :math:`(1 + 2^{i(W;A|T_0)}/(K' L_{\max}))^{-1}` at the encoder's codeword
  (``K' = 1`` for the baseline, whose decoders share one race: the list bound
  is GLS's; any-of-K decoders is at least the single-decoder bound).
  """
  del index
  r = trial_indices(key, num_codewords=num_codewords, max_bins=max_bins,
                    num_decoders=num_decoders, rates=rates, sigma2_grid=sigma2_grid,
                    sigma2_t_given_a=sigma2_t_given_a, capacity=capacity)
  z, a, t = r["z"], r["a"], r["t"]
  k_max = num_decoders
  s2 = jnp.asarray(sigma2_grid, jnp.float32)[:, None, None, None]
  sw = codeword_scales(sigma2_grid)[:, None, None, None]
  kp = jnp.arange(1, k_max + 1)
  dec_alive = jnp.arange(k_max)[None, :] < kp[:, None]  # [K', k]
  dec_alive = dec_alive[None, :, None, :]  # [1, K', 1, k]

  def measure(enc, dec, prior, list_size):  # enc [S, K'], dec [S, K', R, k], prior [S, K', R, k]
    w = sw * z[dec]
    a_hat = reconstruct(w, t, s2, sigma2_t_given_a)
    sq = jnp.min(jnp.where(dec_alive, (a - a_hat) ** 2, jnp.inf), axis=-1)
    match = jnp.any(dec_alive & (dec == enc[:, :, None, None]), axis=-1)
    match_prior = jnp.any(dec_alive & (prior == enc[:, :, None, None]), axis=-1)
    w_enc = sw[..., 0, 0] * z[enc]  # [S, K']
    info = info_bits(w_enc, a, t[0], s2[..., 0, 0], sigma2_t_given_a)
    bound = codec.error_bound_terms(info[..., None], list_size[None, :, None],
                                    jnp.asarray(rates, jnp.float32)[None, None, :])
    return sq, match, match_prior, bound

  bl_enc = jnp.broadcast_to(r["bl_enc"][:, None], r["gls_enc"].shape)
  bl_dec = jnp.broadcast_to(r["bl_dec"][:, None], r["gls_dec"].shape)
  prior_bl = jnp.broadcast_to(r["prior_bl"][:, None, :, None], r["prior_gls"].shape)
  g = measure(r["gls_enc"], r["gls_dec"], r["prior_gls"], kp)
  b = measure(bl_enc, bl_dec, prior_bl, jnp.ones_like(kp))  # shared row: the K = 1 bound
  out = {name: jnp.stack([x, y], axis=1).astype(jnp.float32)
         for name, x, y in zip(("sq", "match", "match_prior", "bound"), g, b)}
  out["overflow"] = r["overflow"]
  return out


@functools.lru_cache(maxsize=32)
def trial_fn(num_codewords, max_bins, num_decoders, rates, sigma2_grid, sigma2_t_given_a, capacity,
             trial_batch=1):
  """The per-trial function for :func:`lcoupling.parallel.iterate_trials` (cached).

  ``trial_batch`` trials are evaluated together (vectorised); a chunk is a
  sequential loop (:func:`jax.lax.map`) over such batches. On a CPU one trial
  at a time keeps the working set (about 1 MB) in cache and is about 3x faster
  than vectorising a whole chunk; ``trial_batch=0`` vectorises the whole chunk
  (accelerators). The decisions (indices, matches) do not depend on it; the
  float32 squared errors can differ in the last bits (other XLA fusion).
  """
  f = functools.partial(trial_outputs, num_codewords=num_codewords, max_bins=max_bins,
                        num_decoders=num_decoders, rates=rates, sigma2_grid=sigma2_grid,
                        sigma2_t_given_a=sigma2_t_given_a, capacity=capacity)
  if trial_batch == 0:
    return f

  @jax.custom_batching.custom_vmap
  def one(key, index):
    return f(key, index)

  @one.def_vmap
  def _rule(axis_size, in_batched, key, index):
    key = key if in_batched[0] else jnp.broadcast_to(key, (axis_size,))
    index = index if in_batched[1] else jnp.broadcast_to(index, (axis_size,))
    out = jax.lax.map(lambda a: f(*a), (key, index), batch_size=None if trial_batch == 1 else trial_batch)
    return out, jax.tree.map(lambda _: True, out)

  return one


# --------------------------------------------------------------------------
# Monte-Carlo over trials.
# --------------------------------------------------------------------------

_FIELDS = ("sq", "match", "match_prior", "bound")


def _fn_from_config(config, capacity=None):
  n, lmax = int(config.num_codewords), int(max(config.num_bins))
  cap = codec.bin_capacity(n, lmax) if capacity is None else int(capacity)
  return trial_fn(n, lmax, int(config.num_decoders), tuple(int(r) for r in config.num_bins),
                  tuple(float(s) for s in config.sigma2_w_given_a_grid),
                  float(config.sigma2_t_given_a), cap, int(config.get("trial_batch", 1)))


def evaluate_trials(key, config, num_trials, *, mesh=None, progress=None):
  """Sums over ``num_trials`` trials (keys ``fold_in(key, t)``) of every cell.

  Returns float64 arrays ``[S, 2, K, R]``: ``db`` (sum of 10 log10 sq),
  ``sq``, ``match``, ``match_prior``, ``bound`` and ``db2`` (sum of squares of
  the dB values), plus ``n``. A trial whose labels overflow the padded bin
  layout (probability < 1e-20) is recomputed exactly with capacity ``N``.
  """
  sums, start = None, 0
  chunk = int(config.chunk_size)
  exact_at = lambda exact: _fn_from_config(  # noqa: E731
      config, capacity=int(config.num_codewords) if exact else None)
  for out in codec.iterate_trials_exact(exact_at, key, num_trials, chunk_size=chunk, mesh=mesh):
    sq = np.maximum(out["sq"].astype(np.float64), _TINY)
    db = 10.0 * np.log10(sq)
    part = {"db": db.sum(0), "db2": (db ** 2).sum(0), "sq": sq.sum(0),
            **{f: out[f].astype(np.float64).sum(0) for f in _FIELDS[1:]}}
    sums = part if sums is None else {k: sums[k] + part[k] for k in sums}
    start += len(sq)
    if progress is not None:
      progress(len(sq))
  sums["n"] = start
  return sums


# --------------------------------------------------------------------------
# The study interface.
# --------------------------------------------------------------------------


def validate(config) -> None:
  """Raises ``ValueError`` naming the config field for any bad value."""
  n = config.num_codewords
  need(isinstance(n, int) and n >= 1, f"config.num_codewords (N) must be an int >= 1, got {n!r}")
  k = config.num_decoders
  need(isinstance(k, int) and k >= 1, f"config.num_decoders (K) must be an int >= 1, got {k!r}")
  codec.check_rates(config.num_bins, "config.num_bins")
  grid = tuple(config.sigma2_w_given_a_grid)
  need(len(grid) >= 1, "config.sigma2_w_given_a_grid must not be empty")
  for s in grid:
    need(isinstance(s, (int, float)) and math.isfinite(s) and s > 0,
         f"config.sigma2_w_given_a_grid: values must be finite and > 0, got {s!r}")
  s = config.sigma2_t_given_a
  need(isinstance(s, (int, float)) and math.isfinite(s) and s > 0,
       f"config.sigma2_t_given_a must be finite and > 0, got {s!r}")
  for f in ("num_selection_trials", "num_eval_trials", "num_repeats", "chunk_size"):
    check_int(config, f, 1)
  tb = config.get("trial_batch", 1)
  need(isinstance(tb, int) and tb >= 0, f"config.trial_batch must be an int >= 0, got {tb!r}")
  check_choice(config, "prng_impl", ("threefry2x32", "rbg", "unsafe_rbg"))


def _point_key(key, repeat, phase):
  return jax.random.fold_in(jax.random.fold_in(key, repeat), phase)


def run_point(key, config, point, *, mesh=None, progress=False):
  """One repeat: select sigma2 per cell on selection trials, evaluate on fresh ones.

  ``point = {"repeat": r}``. Returns one record per ``(scheme, K, L_max)``.
  """
  validate(config)
  repeat = int(point["repeat"])
  t0 = time.perf_counter()
  n_sel, n_ev = int(config.num_selection_trials), int(config.num_eval_trials)
  bar = None
  if progress:
    from tqdm.auto import tqdm  # noqa: PLC0415
    bar = tqdm(total=n_sel + n_ev, desc=f"gaussian repeat {repeat}", unit="trial", leave=False)
  upd = bar.update if bar is not None else None
  sel = evaluate_trials(_point_key(key, repeat, 0), config, n_sel, mesh=mesh, progress=upd)
  t1 = time.perf_counter()
  ev = evaluate_trials(_point_key(key, repeat, 1), config, n_ev, mesh=mesh, progress=upd)
  t2 = time.perf_counter()
  if bar is not None:
    bar.close()
  grid = [float(s) for s in config.sigma2_w_given_a_grid]
  rates = [int(r) for r in config.num_bins]
  sel_db = sel["db"] / sel["n"]  # [S, 2, K, R]
  choice = np.argmin(sel_db, axis=0)  # lowest distortion_db; ties -> first grid value
  records = []
  for si, scheme in enumerate(SCHEME_NAMES):
    for ki in range(int(config.num_decoders)):
      for ri, lm in enumerate(rates):
        c = int(choice[si, ki, ri])
        n = ev["n"]
        db_mean = ev["db"][c, si, ki, ri] / n
        db_var = max(ev["db2"][c, si, ki, ri] / n - db_mean ** 2, 0.0)
        match = ev["match"][c, si, ki, ri] / n
        records.append({
            "repeat": repeat, "scheme": scheme, "K": ki + 1, "L_max": lm,
            "rate_bits": math.log2(lm),
            "distortion_db": db_mean,
            "distortion_db_trial_sem": math.sqrt(db_var / max(n - 1, 1)),
            "mse_db": 10.0 * math.log10(ev["sq"][c, si, ki, ri] / n),
            "match_prob": match,
            "match_prob_no_si": ev["match_prior"][c, si, ki, ri] / n,
            "error_bound": 1.0 - ev["bound"][c, si, ki, ri] / n,
            "sigma2_w_given_a": grid[c],
            "selection_distortion_db": float(sel_db[c, si, ki, ri]),
            "selection_distortion_db_grid": [float(x) for x in sel_db[:, si, ki, ri]],
            "num_selection_trials": n_sel, "num_eval_trials": n, "N": int(config.num_codewords),
            "selection_seconds": t1 - t0, "eval_seconds": t2 - t1, "point_seconds": t2 - t0,
            "trials_per_second": (n_sel + n_ev) / max(t2 - t0, 1e-9),
        })
  return records


_MEASURED = ("distortion_db", "mse_db", "match_prob", "match_prob_no_si", "error_bound")


def summarize(config, point_records):
  """Mean +- SEM over repeats per ``(scheme, K, L_max)`` cell."""
  cells: dict = {}
  for recs in point_records:
    for r in recs:
      cells.setdefault((r["scheme"], r["K"], r["L_max"]), []).append(r)
  out = []
  for (scheme, k, lm), rs in sorted(cells.items(), key=lambda x: (SCHEME_NAMES.index(x[0][0]),
                                                                   x[0][1], x[0][2])):
    rec = {"scheme": scheme, "K": k, "L_max": lm, "rate_bits": math.log2(lm)}
    for f in _MEASURED:
      v = np.array([r[f] for r in rs], np.float64)
      rec[f], rec[f + "_sem"] = common.mean_sem(v)
    chosen = [r["sigma2_w_given_a"] for r in rs]
    mode = Counter(chosen).most_common()
    best = max(c for _, c in mode)
    rec["sigma2_w_given_a"] = min(s for s, c in mode if c == best)
    rec["sigma2_w_given_a_per_repeat"] = chosen
    rec["num_repeats"] = len(rs)
    rec["num_eval_trials"] = int(sum(r["num_eval_trials"] for r in rs))
    rec["wall_seconds_all_repeats"] = float(sum(r["point_seconds"] for r in rs))
    if k == 1 and lm in ANCHOR_DB:
      rec["anchor_db"] = ANCHOR_DB[lm]
    out.append(rec)
  return out


# --------------------------------------------------------------------------
# Figures and table (from results.json only).
# --------------------------------------------------------------------------


def plot(results, figdir):
  """Matching probability vs rate and R-D curves (PNG + PDF). Returns the paths."""
  plt = plotting.pyplot()
  recs = common.records(results)
  figdir = pathlib.Path(figdir)
  figdir.mkdir(parents=True, exist_ok=True)
  ks = sorted({r["K"] for r in recs})
  paths = []

  fig, axes = plt.subplots(1, len(ks), figsize=(3.4 * len(ks), 3.2), sharey=True, squeeze=False)
  for ax, k in zip(axes[0], ks):
    for scheme, field, label, style in (("gls", "match_prob_no_si", "GLS, no side info", "s:"),
                                        ("gls", "match_prob", "GLS", "o-"),
                                        ("baseline", "match_prob", "baseline", "^--")):
      x, y, e = common.rate_series(recs, scheme, k, field)
      ax.errorbar(x, y, yerr=e, fmt=style, ms=4, capsize=2, label=label)
    x, y, _ = common.rate_series(recs, "gls", k, "error_bound")
    ax.plot(x, 1.0 - y, "k-", lw=0.8, alpha=0.6, label="GLS bound (1 - error bound)")
    ax.set_title(f"K = {k}")
    ax.set_xlabel("rate (bits)")
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel("matching probability")
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  paths += plotting.save(fig, figdir / "gaussian_matching")

  fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), squeeze=False)
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for j, (field, ylabel) in enumerate((("distortion_db", "distortion (dB): mean of 10 log10 (A - Â)²"),
                                       ("mse_db", "10 log10 MSE (dB)"))):
    ax = axes[0][j]
    for i, k in enumerate(ks):
      for scheme, style in (("gls", "o-"), ("baseline", "^--")):
        x, y, e = common.rate_series(recs, scheme, k, field)
        ax.errorbar(x, y, yerr=e, fmt=style, ms=4, capsize=2, color=colors[i % len(colors)],
                    label=f"{'GLS' if scheme == 'gls' else 'BL'} K={k}")
    if field == "distortion_db":
      xa = [math.log2(l) for l in ANCHOR_DB]
      ax.plot(xa, list(ANCHOR_DB.values()), "k+", ms=9, label="paper K=1")
    ax.set_xlabel("rate (bits)")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=6, ncol=2)
  fig.tight_layout()
  paths += plotting.save(fig, figdir / "gaussian_rd")
  return paths


def markdown_table(results, field: str = "distortion_db") -> str:
  """Markdown table of ``field`` (default the paper's distortion, dB) per L_max.

  Columns: the paper's K = 1 anchor (for ``distortion_db`` only), then GLS
  and baseline for every K.
  """
  digits = 3 if field.startswith("match") or field == "error_bound" else 2
  return common.rate_table(common.records(results), field, schemes=SCHEME_NAMES, digits=digits,
                           anchor=ANCHOR_DB if field == "distortion_db" else None, anchor_digits=2)


def tables(results, *fields) -> str:
  """Markdown tables of FIELD ... per L_max (default distortion_db, match_prob; any field)."""
  common.check_fields(results, fields)
  return "\n".join(f"\n{field}:\n\n{markdown_table(results, field)}"
                   for field in fields or ("distortion_db", "match_prob"))


def main(argv=None) -> int:
  """``python -m lcoupling.studies.gaussian WORKDIR_OR_RESULTS_JSON [FIELD ...]``."""
  return common.study_main("gaussian", tables, argv)


if __name__ == "__main__":
  sys.exit(main())
