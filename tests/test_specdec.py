# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of lcoupling.specdec: exact output distribution, invariances, acceptance, errors.

Exactness is tested on Markov-chain LMs, whose sequence distribution is
enumerable: the emitted sequences of ``NUM_KEYS`` vmapped seeds are compared
with the target's exact distribution over all ``V ** NEW`` continuations by a
chi-square test at level ``ALPHA`` (fixed seeds: deterministic). Every
configuration compiles once and runs all its settings (target temperature,
draft temperatures, eos) as one vmapped batch.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lcoupling import bounds, specdec
from lcoupling.lm import Llama, LlamaConfig, MarkovLM, sampling, sequence_probabilities
from lcoupling.lm import cache as lm_cache
from lcoupling.specdec import engine, metrics

ALPHA = 1e-4  #: chi-square significance level.
NUM_SE = 4.0  #: tolerance of frequency tests, in standard errors.
NUM_KEYS = 20_000  #: seeds per setting.
V = 5  #: vocabulary.
NEW = 4  #: new tokens (V ** NEW = 625 sequences).
L = 3  #: draft length (2 with a tuple of drafters).
K = 3  #: drafts of the multi-draft schemes.
TOP_K = 3
PROMPT = (2, 4, 0)  #: the chain starts from state 0.
EOS = 1
#: Compiling at LLVM -O1 halves the compile time of these small programs (runtime unchanged).
FAST_COMPILE = {"xla_backend_optimization_level": 1}

MULTI = ("gls", "gls_strong", "specinfer", "spectr")
SINGLE = ("sps", "daliri")
DIVERSE = ("gls", "gls_strong", "specinfer")


def _chain(seed, zeros_per_row=1, concentration=1.0):
  """A V x V transition matrix (Dirichlet rows), ``zeros_per_row`` zero-mass entries per row."""
  rng = np.random.default_rng(seed)
  p = rng.dirichlet(np.full(V, concentration), V)
  for row in p:
    row[rng.permutation(V)[:zeros_per_row]] = 0.0
  p /= p.sum(1, keepdims=True)
  with np.errstate(divide="ignore"):
    return np.log(p).astype(np.float32)


TARGET = MarkovLM(_chain(1))
DRAFTERS = tuple(MarkovLM(_chain(s, zeros_per_row=z)) for s, z in ((2, 1), (3, 0), (4, 2)))

#: Settings run as one vmapped batch per configuration. Single-draft schemes use the first
#: draft temperature; spectr (i.i.d. only) uses the first one for every row.
SETTINGS = (
    ("iid", 1.0, (1.0, 1.0, 1.0), -1),
    ("diverse_eos", 1.5, (0.5, 1.0, 2.0), EOS),
)


def _num_drafts(scheme):
  return 1 if scheme in SINGLE else K


def _draft_temps(scheme, temps):
  if scheme in SINGLE:
    return temps[:1]
  if scheme == "spectr":
    return (temps[0],) * K
  return temps


@functools.partial(jax.jit, static_argnames=("scheme", "top_k", "length", "num_drafts"),
                   compiler_options=FAST_COMPILE)
def _run_jit(keys, target, drafter, temps, draft_temps, eos, strong, scheme, top_k, length,
             num_drafts):
  """``specdec.generate`` vmapped over settings and keys, compiled once per configuration.

  It is ``generate``'s own validation and jitted core, called with ``gls_strong``'s row-mask
  flag as an argument, so that ``gls`` and ``gls_strong`` share one compilation (as they do
  inside ``generate``); test_vmap_equals_loop_and_jit_compiles_once checks that the public
  function gives the same rows.
  """
  def one(key, temp, dtemps, eos_id):
    if scheme == "autoregressive":
      drafter_, dtemps_ = None, None
    else:
      drafter_, dtemps_ = drafter, tuple(dtemps[i] for i in range(num_drafts))
    cfg, inputs = engine.prepare(target, jnp.asarray(PROMPT), scheme=scheme, drafter=drafter_,
                                 num_drafts=num_drafts, draft_length=length, max_new_tokens=NEW,
                                 temperature=temp, top_k=top_k, draft_temperatures=dtemps_,
                                 eos_id=eos_id)
    return engine.decode(key, inputs._replace(strong=strong), cfg=cfg)

  per_setting = jax.vmap(one, in_axes=(0, None, None, None))
  return jax.vmap(per_setting)(keys, temps, draft_temps, eos)


def _keys(seed, num=NUM_KEYS):
  return jax.random.split(jax.random.key(seed), len(SETTINGS) * num).reshape(len(SETTINGS), num)


@functools.lru_cache(maxsize=None)
def _generations(scheme, drafters="single", top_k=0, seed=0, num_drafts=None):
  """Generation (numpy, [settings, keys, ...]) of one configuration, all settings.

  A tuple of drafters drafts ``L - 1`` tokens per block (so gls_strong = autoregressive is
  checked at two draft lengths without another compilation).
  """
  num_drafts = num_drafts or _num_drafts(scheme)
  length = L if drafters == "single" else L - 1
  drafter = DRAFTERS[0] if drafters == "single" else DRAFTERS[:num_drafts]
  temps = jnp.array([s[1] for s in SETTINGS], jnp.float32)
  dtemps = jnp.array([_draft_temps(scheme, s[2]) for s in SETTINGS], jnp.float32)
  eos = jnp.array([s[3] for s in SETTINGS], jnp.int32)
  strong = jnp.bool_(scheme == "gls_strong")
  out = _run_jit(_keys(seed), TARGET, drafter, temps, dtemps, eos, strong,
                 scheme="gls" if scheme == "gls_strong" else scheme,
                 top_k=top_k, length=length, num_drafts=num_drafts)
  return jax.tree.map(np.asarray, out)


def _transform(temperature, top_k):
  return lambda logits: sampling.filter_logits(logits, temperature, top_k)


def _sequence_law(temperature, top_k, eos):
  """Exact law of the emitted sequence: {pattern index: probability} (eos-truncated)."""
  probs = sequence_probabilities(TARGET, PROMPT[-1], NEW, transform=_transform(temperature, top_k))
  law = {}
  for seq in itertools.product(range(V), repeat=NEW):
    law_key = _pattern(np.array(seq), eos)
    law[law_key] = law.get(law_key, 0.0) + probs[seq]
  return law


def _pattern(tokens, eos):
  """Sequence -> integer code, tokens after the first eos replaced by PAD (digit V)."""
  tokens = np.array(tokens)
  if eos >= 0 and (tokens == eos).any():
    tokens[np.argmax(tokens == eos) + 1:] = V
  tokens = np.where(tokens < 0, V, tokens)
  return int(np.ravel_multi_index(tuple(tokens), (V + 1,) * NEW))


def _assert_exact(gen, setting_index, top_k, assert_chisquare, what):
  _, temperature, _, eos = SETTINGS[setting_index]
  tokens = gen.tokens[setting_index]
  length = gen.length[setting_index]
  # tokens after length are PAD, length counts up to and including eos
  pad = np.arange(NEW)[None] >= length[:, None]
  np.testing.assert_array_equal(tokens < 0, pad)
  if eos >= 0:
    ended = (tokens == eos).any(1)
    np.testing.assert_array_equal(length[ended], np.argmax(tokens == eos, 1)[ended] + 1)
    assert ended.any() and (~ended).any()
  else:
    assert (length == NEW).all()
  law = _sequence_law(temperature, top_k, eos)
  codes = np.ravel_multi_index(tuple(np.where(tokens < 0, V, tokens).T), (V + 1,) * NEW)
  support = sorted(law)
  index = {c: i for i, c in enumerate(support)}
  assert set(np.unique(codes)) <= set(support), f"{what}: impossible sequences were emitted"
  counts = np.bincount([index[c] for c in codes], minlength=len(support))
  assert_chisquare(counts, np.array([law[c] for c in support]), ALPHA, what=what)


# --------------------------------------------------------------------------
# Exact output distribution.
# --------------------------------------------------------------------------

_EXACT_CASES = (
    [(s, "single", k) for s in ("autoregressive",) + MULTI + SINGLE for k in (0, TOP_K)]
    + [(s, "tuple", TOP_K) for s in DIVERSE])


@pytest.mark.parametrize("scheme, drafters, top_k", _EXACT_CASES)
def test_output_is_the_targets_sequence_distribution(scheme, drafters, top_k, assert_chisquare):
  gen = _generations(scheme, drafters, top_k)
  for i, setting in enumerate(SETTINGS):
    _assert_exact(gen, i, top_k, assert_chisquare,
                  what=f"{scheme} {drafters} top_k={top_k} {setting[0]}")
  if scheme != "autoregressive":
    # the drafters differ enough that every branch of the walk runs: rejections (residual /
    # GLS token), accepted positions and full blocks with a bonus token
    hist = metrics.accepted_length_histogram(jax.tree.map(lambda x: x[0], gen))
    assert hist[0] > 0 and hist[1:-1].sum() > 0 and hist[-1] > 0, hist


def test_support_races_equal_dense_races():
  """Race times generated on the top-k support are the dense table's: with top_k = 4 = the
  number of tokens of positive mass in every row, the sparse path emits the dense path's
  tokens (same keys)."""
  assert (np.isneginf(np.asarray(TARGET.transition_logits[...])).sum(1) == V - 4).all()
  dense = _generations("autoregressive", "single", 0)
  sparse = _generations("autoregressive", "single", 4)
  np.testing.assert_array_equal(sparse.tokens, dense.tokens)


def test_drafts_differ_from_target_substantially():
  q = np.asarray(jax.nn.softmax(TARGET.transition_logits[...], -1))
  for d in DRAFTERS:
    p = np.asarray(jax.nn.softmax(d.transition_logits[...], -1))
    assert (0.5 * np.abs(p - q).sum(1)).mean() > 0.25


# --------------------------------------------------------------------------
# Invariances.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("drafters, top_k", [("single", 0), ("single", TOP_K), ("tuple", TOP_K)])
def test_gls_strong_reproduces_autoregressive_token_for_token(drafters, top_k):
  """Strong drafter invariance: any drafter, any draft temperatures, any draft length (3 with
  one drafter, 2 with the tuple), same key -> same text."""
  ref = _generations("autoregressive", "single", top_k)
  out = _generations("gls_strong", drafters, top_k)
  np.testing.assert_array_equal(out.tokens, ref.tokens)
  np.testing.assert_array_equal(out.length, ref.length)
  # and it really drafted and verified (not one token per call)
  assert metrics.block_efficiency(out) > 1.2
  # plain gls (min over the alive rows only) does not reproduce it
  assert (_generations("gls", drafters, top_k).tokens != ref.tokens).any()


def test_daliri_reproduces_autoregressive_with_one_row():
  """Daliri = GLS with one row: its target race is row 0's at every position, as the
  autoregressive reference with num_drafts = 1."""
  ref = _generations("autoregressive", "single", TOP_K, num_drafts=1)
  out = _generations("daliri", "single", TOP_K)
  np.testing.assert_array_equal(out.tokens, ref.tokens)
  assert metrics.block_efficiency(out) > 1.2


def _random_block(seed, top_k):
  """Random drafts, target support and two different draft supports of one block (K x L)."""
  rng = np.random.default_rng(seed)
  logits = lambda *shape: jnp.asarray(rng.normal(size=shape) * 1.5, jnp.float32)
  target = specdec.support(logits(K, L + 1, V), 1.0, top_k)
  draft_a = specdec.support(logits(K, L, V), 1.0, top_k)
  draft_b = specdec.support(logits(K, L, V), 1.0, top_k)
  # drafts: tokens of the target's support, so that some positions get accepted
  drafts = jnp.asarray(rng.integers(0, target.ids.shape[-1], (K, L)), jnp.int32)
  drafts = jnp.take_along_axis(target.ids[:, :L], drafts[..., None], -1)[..., 0]
  return drafts, target, draft_a, draft_b


@pytest.mark.parametrize("scheme, invariant", [("gls", True), ("specinfer", False),
                                               ("spectr", False)])
def test_conditional_drafter_invariance(scheme, invariant):
  """Same drafts, different draft probabilities: GLS's output is unchanged, the baselines' not."""
  top_k = TOP_K if scheme == "specinfer" else 0
  drafts, target, draft_a, draft_b = _random_block(5, top_k)
  keys = jax.random.split(jax.random.key(6), 2000)
  run = jax.jit(jax.vmap(lambda k, d: specdec.verify_block(k, 3, drafts, target, d, scheme=scheme,
                                                           dense=top_k == 0), (0, None)),
                compiler_options=FAST_COMPILE)
  a, b = run(keys, draft_a), run(keys, draft_b)
  assert (np.asarray(a.num_accepted) > 0).any() and (np.asarray(a.num_accepted) < L).any()
  same = all(np.array_equal(x, y) for x, y in zip(a, b))
  assert same == invariant


# --------------------------------------------------------------------------
# Acceptance: exact values on the Markov chain.
# --------------------------------------------------------------------------


def _rows(model, temperature, top_k):
  logits = _transform(temperature, top_k)(model.transition_logits[...])
  p = np.asarray(jax.nn.softmax(logits, -1), np.float64)
  return p / p.sum(1, keepdims=True)


@pytest.mark.parametrize("top_k", [0, TOP_K])
def test_sps_first_block_accepted_length_distribution_is_exact(top_k, assert_chisquare,
                                                               assert_close_to):
  """Single-draft speculative sampling accepts draft x from state s with joint probability
  min(p(x|s), q(x|s)), so Pr[the first j drafts are accepted] = sum(e_s0 M^j) with
  M[s, x] = min(p(x|s), q(x|s)): the first block's accepted length has an exact law."""
  gen = _generations("sps", "single", top_k)
  for i, (name, temperature, dtemps, _) in enumerate(SETTINGS):
    q = _rows(TARGET, temperature, top_k)
    p = _rows(DRAFTERS[0], dtemps[0], top_k)
    m = np.minimum(p, q)
    state = np.eye(V)[PROMPT[-1]]
    at_least = [1.0]
    for _ in range(L):
      state = state @ m
      at_least.append(state.sum())
    at_least.append(0.0)
    law = np.array(at_least[:-1]) - np.array(at_least[1:])  # Pr[accepted = j], j = 0..L
    first = gen.accepted_lengths[i, :, 0]
    assert_chisquare(np.bincount(first, minlength=L + 1), law, ALPHA, what=f"sps {name}")
    # the first block's expected number of emitted tokens: 1 + sum_j Pr[>= j accepted]
    emitted = 1 + first
    expected = 1 + sum(at_least[1:L + 1])
    se = emitted.std() / np.sqrt(len(emitted))
    assert abs(emitted.mean() - expected) <= NUM_SE * se, (emitted.mean(), expected)
  # position 1 acceptance = 1 - d_TV of the first rows (setting "iid")
  assert_close_to((gen.accepted_lengths[0, :, 0] >= 1).mean(),
                  float(np.minimum(_rows(TARGET, 1.0, top_k)[PROMPT[-1]],
                                   _rows(DRAFTERS[0], 1.0, top_k)[PROMPT[-1]]).sum()),
                  NUM_KEYS, NUM_SE, what="sps position 1")


@pytest.mark.parametrize("top_k", [0, TOP_K])
def test_strong_invariance_costs_acceptance(top_k):
  """Same keys, so both schemes agree at the first position; afterwards GLS's target race runs
  over the alive rows only, and accepts more than gls_strong's race over all rows (paired over
  20 000 keys: about 12-18 standard errors dense, 4 with top-k 3, where few rows survive)."""
  gls, strong = _generations("gls", "single", top_k), _generations("gls_strong", "single", top_k)
  for i, (name, *_) in enumerate(SETTINGS):
    diff = (gls.accepted_lengths[i, :, 0] - strong.accepted_lengths[i, :, 0]).astype(np.float64)
    z = diff.mean() / (diff.std() / np.sqrt(diff.size))
    assert z > (4.0 if top_k == 0 else 0.0), (name, top_k, diff.mean(), z)


@pytest.mark.parametrize("top_k", [0, TOP_K])
def test_gls_first_position_acceptance_is_exact(top_k, assert_close_to, assert_at_least):
  gen = _generations("gls", "single", top_k)
  for i, (name, temperature, dtemps, _) in enumerate(SETTINGS):
    q = _rows(TARGET, temperature, top_k)[PROMPT[-1]]
    ps = np.stack([_rows(DRAFTERS[0], t, top_k)[PROMPT[-1]] for t in dtemps])
    exact = float(bounds.gls_acceptance_probability(ps, q))
    lml = float(bounds.diverse_list_matching_lemma(ps, q))
    if name == "iid":
      np.testing.assert_allclose(lml, float(bounds.list_matching_lemma(ps[0], q, K)), rtol=1e-5)
    measured = (gen.accepted_lengths[i, :, 0] >= 1).mean()
    assert_close_to(measured, exact, NUM_KEYS, NUM_SE, what=f"gls position 1 {name}")
    assert_at_least(measured, lml, NUM_KEYS, NUM_SE, what=f"gls vs LML {name}")
    assert exact > lml
    # per-position acceptance counts agree with the accepted lengths
    np.testing.assert_array_equal(gen.position_accepted[i].sum(0),
                                  [(gen.accepted_lengths[i] > j).sum() for j in range(L)])


# --------------------------------------------------------------------------
# jit / vmap / metrics.
# --------------------------------------------------------------------------


def test_vmap_equals_loop_and_jit_compiles_once():
  """A loop of unbatched calls gives the rows of the vmapped run (setting "iid")."""
  kw = dict(scheme="gls", drafter=DRAFTERS[0], num_drafts=K, draft_length=L, max_new_tokens=NEW,
            top_k=TOP_K)
  keys = _keys(0)[0, :4]
  before = engine.decode._cache_size()
  loop = [specdec.generate(k, TARGET, jnp.asarray(PROMPT), **kw) for k in keys]
  other = specdec.generate(keys[0], TARGET, jnp.asarray(PROMPT), temperature=0.8, eos_id=2, **kw)
  assert engine.decode._cache_size() == before + 1  # keys, temperature, eos: one compile
  batched = _generations("gls", "single", TOP_K)
  for i, one in enumerate(loop):
    for field, a, b in zip(one._fields, one, batched):
      np.testing.assert_array_equal(a, b[0, i], err_msg=field)
  assert other.tokens.shape == (NEW,)
  assert loop[0].tokens.dtype == jnp.int32 and loop[0].tokens.shape == (NEW,)
  assert loop[0].accepted_lengths.shape == (NEW,) and loop[0].position_reached.shape == (L,)
  # metrics of one generation are consistent
  g = loop[0]
  n = int(g.num_blocks)
  assert int(g.num_target_calls) == n and int(g.num_drafter_calls) == L * n
  assert (np.asarray(g.accepted_lengths[n:]) == specdec.PAD_ID).all()
  assert int(g.length) == NEW <= int((np.asarray(g.accepted_lengths[:n]) + 1).sum())
  # timed_generate runs the same computation phase by phase
  drafts = []  # on_block sees each block's drafts
  timed, times = metrics.timed_generate(keys[1], TARGET, jnp.asarray(PROMPT), warmup=False,
                                        on_block=drafts.append, **kw)
  for field, a, b in zip(timed._fields, timed, loop[1]):
    np.testing.assert_array_equal(a, b, err_msg=field)
  assert times.num_blocks == int(timed.num_blocks) and times.total > 0
  assert len(drafts) == times.num_blocks and all(d.shape == (K, L) for d in drafts)


def test_timed_phases_are_shared_between_schemes_and_equal_generate():
  """The host loop's jitted phases are shared by the schemes that agree on what a phase
  reads (the target pass by every scheme with the same K; the draft phase within the GLS
  family and among the others), and each scheme's timed decode is still ``generate``'s."""
  kw = dict(drafter=DRAFTERS[0], num_drafts=K, draft_length=L, max_new_tokens=NEW, top_k=TOP_K)
  prompt = jnp.asarray(PROMPT)
  phases = {s: metrics._phases(engine.prepare(TARGET, prompt, scheme=s, **kw)[0])
            for s in ("gls", "gls_strong", "specinfer", "spectr")}
  names = metrics._PHASE_NAMES
  same = lambda a, b, name: phases[a][names.index(name)] is phases[b][names.index(name)]  # noqa: E731
  assert all(same("gls", s, n) for s in ("specinfer", "spectr") for n in ("prefill", "target", "finish"))
  assert same("specinfer", "spectr", "draft") and not same("gls", "specinfer", "draft")
  assert not same("gls", "specinfer", "verify") and not same("specinfer", "spectr", "verify")
  assert all(same("gls", "gls_strong", n) for n in names)  # one configuration
  key = _keys(0)[0, 2]
  for scheme in ("spectr", "specinfer", "gls", "gls_strong"):  # the shared programs reused
    timed, _ = metrics.timed_generate(key, TARGET, prompt, warmup=False, scheme=scheme, **kw)
    ref = specdec.generate(key, TARGET, prompt, scheme=scheme, **kw)
    for field, a, b in zip(timed._fields, timed, ref):
      np.testing.assert_array_equal(a, b, err_msg=f"{scheme} {field}")


def test_metrics():
  gen = _generations("gls", "single", 0)
  one = jax.tree.map(lambda x: x[0], gen)  # setting "iid"
  s = metrics.summary(one)
  hist = np.array(s["accepted_length_histogram"])
  assert hist.sum() == one.num_blocks.sum() and len(hist) == L + 1
  ratios = one.length / one.num_target_calls
  assert s["block_efficiency"] == pytest.approx(ratios.mean())  # mean of per-sequence ratios
  pooled = one.length.sum() / one.num_target_calls.sum()
  assert s["pooled_block_efficiency"] == pytest.approx(pooled)
  assert s["block_efficiency"] != s["pooled_block_efficiency"]  # the two estimators differ
  grid = ratios.reshape(4, -1)  # [seeds, prompts]: the paper's mean over prompts per seed
  np.testing.assert_allclose(metrics.block_efficiency_per_seed(
      one.length.reshape(4, -1), one.num_target_calls.reshape(4, -1)), grid.mean(1))
  assert 1 < s["block_efficiency"] <= L + 1
  acc = np.array(s["position_acceptance"])
  assert acc.shape == (L,) and ((acc > 0) & (acc < 1)).all()
  assert metrics.token_rate(one.length, 2.0) == pytest.approx(one.length.sum() / 2.0)
  ar = jax.tree.map(lambda x: x[0], _generations("autoregressive", "single", 0))
  assert metrics.block_efficiency(ar) == 1.0


# --------------------------------------------------------------------------
# Real architectures.
# --------------------------------------------------------------------------

_LLAMA = LlamaConfig(vocab_size=40, num_layers=2, hidden_size=32, intermediate_size=64,
                     num_heads=4, num_kv_heads=2, head_dim=8, max_position_embeddings=64)


@functools.partial(jax.jit, static_argnames=("scheme", "num_drafts", "top_k"),
                   compiler_options=FAST_COMPILE)
def _llama_run(keys, target, drafter, scheme, num_drafts, top_k):
  prompt = jnp.array([3, 7])  # the drafters' first window starts at a negative position
  kw = dict(scheme=scheme, num_drafts=num_drafts, max_new_tokens=10, top_k=top_k)
  if drafter is not None:
    kw.update(drafter=drafter, draft_length=3)
  return jax.vmap(lambda k: specdec.generate(k, target, prompt, **kw))(keys)


def test_llama_target_and_drafters():
  """gls_strong vs autoregressive on a random Llama target, Llama and MarkovLM drafters.

  The K x (L + 1) verification pass and the one-token decode give logits that differ in
  the last bits (measured: |diff| ~ 1e-7, no row bit-identical), so token identity is not
  guaranteed in floating point; a race decided by less than that is rare, and on these
  seeds every token agrees.
  """
  target = Llama(_LLAMA, rngs=nnx.Rngs(0))
  llama_drafter = Llama(_LLAMA.replace(num_layers=1), rngs=nnx.Rngs(1))
  markov_drafter = MarkovLM(jax.random.normal(jax.random.key(2), (40, 40)))
  keys = jax.random.split(jax.random.key(3), 32)
  ref = _llama_run(keys, target, None, scheme="autoregressive", num_drafts=2, top_k=8)
  # two different architectures as the two draft rows
  out = _llama_run(keys, target, (llama_drafter, markov_drafter), scheme="gls_strong",
                   num_drafts=2, top_k=8)
  np.testing.assert_array_equal(out.tokens, ref.tokens)
  assert np.asarray(out.num_blocks).mean() < 10  # drafts were accepted
  # the drafter's cache is right: with drafter = target every draft is accepted (the draft
  # and target logits agree up to float rounding, so the races agree)
  same = _llama_run(keys, target, target, scheme="gls", num_drafts=2, top_k=8)
  assert metrics.position_acceptance(same).min() > 0.99


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_drafter_window_pass_of_one_row_equals_all_rows(dtype):
  """The block's first drafter call computes row 0 alone and gives its cache to every row
  (``engine._window_pass``): the same last logits for every row, bit for bit, and the same
  cache at every position a later query reads, as running all K rows on the window.

  The rows' caches differ after the window (the previous block's rejected drafts), as in a
  decode; bfloat16 at these sizes runs the CPU kernel where it is built (widths of 64).
  """
  config = _LLAMA.replace(vocab_size=128, hidden_size=64, intermediate_size=128, head_dim=16,
                          dtype=dtype)
  drafter = Llama(config, rngs=nnx.Rngs(4))
  k, length = 3, 3
  prompt = jnp.array([5, 9, 2, 7, 1, 3])
  cfg, _ = engine.prepare(drafter, prompt, scheme="gls", drafter=drafter, num_drafts=k,
                          draft_length=length, max_new_tokens=8)
  cache = drafter.init_cache(1, cfg.cache_length)
  _, cache = drafter(prompt[None, :4], cache, jnp.zeros((1,), jnp.int32))
  cache = lm_cache.broadcast_rows(cache, k)
  # each row's own drafts at positions 4 .. 6, as a previous block leaves them
  _, cache = drafter(jnp.array([[11, 12, 13], [21, 22, 23], [31, 32, 33]]), cache,
                     jnp.full((k,), 4, jnp.int32))
  start = 3  # the window rewrites positions 3 .. 6
  window = jnp.array([7, 1, 3, 40])
  run = jax.jit(engine._window_pass, static_argnums=4)
  got_logits, got = run(drafter, cache, window, start, cfg)
  every_row = jax.jit(engine._call_drafters, static_argnums=4)
  want_logits, want = every_row(drafter, cache, jnp.broadcast_to(window, (k, 4)), start, cfg)
  np.testing.assert_array_equal(got_logits, want_logits[:, -1])
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(a[:, :, :start + 4], b[:, :, :start + 4])
  assert not np.array_equal(got_logits, jnp.zeros_like(got_logits))


def test_padded_prompts_share_one_compilation_and_equal_unpadded_runs():
  """``prompt_length`` inside a padded buffer = the unpadded prompt, vmapped over prompts."""
  target = Llama(_LLAMA, rngs=nnx.Rngs(0))
  drafter = Llama(_LLAMA.replace(num_layers=1), rngs=nnx.Rngs(1))
  prompts = [np.array([5]), np.array([2, 9, 9, 4, 6, 1])]  # (each unpadded shape compiles anew)
  buf = np.full((len(prompts), 8), 11, np.int32)  # padding: any valid id
  for i, p in enumerate(prompts):
    buf[i, :len(p)] = p
  lengths = np.array([len(p) for p in prompts], np.int32)
  keys = jax.random.split(jax.random.key(5), len(prompts))
  kw = dict(scheme="gls", drafter=drafter, num_drafts=3, draft_length=3, max_new_tokens=9,
            top_k=8)
  padded = jax.vmap(lambda k, b, n: specdec.generate(k, target, b, prompt_length=n, **kw))(
      keys, jnp.asarray(buf), jnp.asarray(lengths))
  for i, p in enumerate(prompts):
    alone = specdec.generate(keys[i], target, jnp.asarray(p), **kw)
    np.testing.assert_array_equal(padded.tokens[i], alone.tokens)
    assert int(padded.num_blocks[i]) == int(alone.num_blocks)
  out = specdec.generate(keys[0], MarkovLM(_chain(1)), jnp.array([2, 4, 0, 3, 3]),
                         prompt_length=3, scheme="autoregressive", max_new_tokens=4)
  ref = specdec.generate(keys[0], MarkovLM(_chain(1)), jnp.asarray(PROMPT),
                         scheme="autoregressive", max_new_tokens=4)
  np.testing.assert_array_equal(out.tokens, ref.tokens)


# --------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------


def _gen(**overrides):
  kw = dict(scheme="gls", drafter=DRAFTERS[0], num_drafts=2, draft_length=2, max_new_tokens=3)
  kw.update(overrides)
  target = kw.pop("target", TARGET)
  prompt = kw.pop("prompt", jnp.asarray(PROMPT))
  return specdec.generate(jax.random.key(0), target, prompt, **kw)


@pytest.mark.parametrize("overrides, error, match", [
    (dict(num_drafts=0), ValueError, "num_drafts must be >= 1"),
    (dict(num_drafts=2.0), TypeError, "num_drafts must be a Python int"),
    (dict(draft_length=0), ValueError, "draft_length must be >= 1"),
    (dict(max_new_tokens=0), ValueError, "max_new_tokens must be >= 1"),
    (dict(temperature=0.0), ValueError, "temperature must be a finite number > 0"),
    (dict(temperature=-1.0), ValueError, "temperature must be a finite number > 0"),
    (dict(top_k=V + 1), ValueError, "top_k = 6 is larger than the vocabulary"),
    (dict(top_k=-1), ValueError, "top_k must be an int >= 0"),
    (dict(drafter=MarkovLM(jnp.zeros((V + 1, V + 1)))), ValueError,
     "drafter has a vocabulary of 6 tokens but the target has 5"),
    (dict(drafter=(DRAFTERS[0], MarkovLM(jnp.zeros((4, 4))))), ValueError,
     r"drafter\[1\] has a vocabulary of 4"),
    (dict(scheme="spectr", draft_temperatures=(1.0, 0.5)), ValueError,
     "spectr does not support diverse drafts: draft_temperatures differ"),
    (dict(scheme="spectr", drafter=DRAFTERS[:2]), ValueError,
     "spectr does not support diverse drafts: drafter is a tuple"),
    (dict(scheme="sps"), ValueError, "sps is a single-draft scheme: num_drafts must be 1"),
    (dict(scheme="daliri"), ValueError, "daliri is a single-draft scheme"),
    (dict(scheme="medusa"), ValueError, "unknown scheme 'medusa'"),
    (dict(drafter=None), ValueError, "scheme 'gls' needs a drafter"),
    (dict(scheme="autoregressive"), ValueError, "'autoregressive' samples the target alone"),
    (dict(drafter=DRAFTERS), ValueError, "drafter is a tuple of 3 models but num_drafts = 2"),
    (dict(draft_temperatures=(1.0,)), ValueError, "draft_temperatures has 1 entries"),
    (dict(draft_temperatures=(1.0, 0.0)), ValueError, r"draft_temperatures\[1\] must be"),
    (dict(eos_id=V), ValueError, "eos_id must lie in"),
    (dict(prompt=jnp.array([], jnp.int32)), ValueError, "prompt must be a non-empty 1-D"),
    (dict(prompt=jnp.array([0, V])), ValueError, "prompt: token ids must lie in"),
    (dict(prompt=jnp.array([0.5])), TypeError, "prompt must hold integer token ids"),
    (dict(prompt_length=4), ValueError, r"prompt_length must lie in \[1, len\(prompt\) = 3\]"),
    (dict(prompt_length=0), ValueError, "prompt_length must lie in"),
    (dict(prompt_length=1.5), TypeError, "prompt_length must be an int or None"),
    (dict(target="model"), TypeError, "target must be a language model"),
    (dict(target=Llama(_LLAMA.replace(vocab_size=V, max_position_embeddings=16),
                       rngs=nnx.Rngs(0)), drafter=DRAFTERS[0], max_new_tokens=12), ValueError,
     r"prompt too long: .* 19 positions exceed the target's context length 16"),
])
def test_bad_input_names_the_argument(overrides, error, match):
  with pytest.raises(error, match=match):
    _gen(**overrides)


def test_bad_key():
  with pytest.raises(ValueError, match="key must be a threefry2x32 key"):
    specdec.generate(jax.random.key(0, impl="rbg"), TARGET, jnp.asarray(PROMPT),
                     scheme="autoregressive", max_new_tokens=2)
  with pytest.raises(ValueError, match="key must be one PRNG key"):
    specdec.generate(jax.random.split(jax.random.key(0), 2), TARGET, jnp.asarray(PROMPT),
                     scheme="autoregressive", max_new_tokens=2)


def test_verify_block_bad_input():
  drafts, target, draft_a, _ = _random_block(0, 0)
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="specinfer reads the draft probabilities"):
    specdec.verify_block(key, 0, drafts, target, None, scheme="specinfer")
  with pytest.raises(ValueError, match="scheme must be one of"):
    specdec.verify_block(key, 0, drafts, target, draft_a, scheme="autoregressive")
  with pytest.raises(ValueError, match=r"target must have ids and logits of shape \[K, L \+ 1"):
    specdec.verify_block(key, 0, drafts[:, :2], target, draft_a, scheme="gls")


def test_prepare_takes_generate_arguments_and_defaults():
  """``engine.prepare`` (what host loops such as timed_generate call) mirrors ``generate``."""
  import inspect
  gen = inspect.signature(specdec.generate).parameters
  prep = inspect.signature(engine.prepare).parameters
  assert list(gen)[1:] == list(prep)
  for name, param in prep.items():
    assert (param.default, param.kind) == (gen[name].default, gen[name].kind), name
