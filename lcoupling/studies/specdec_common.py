# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""What the four speculative-decoding studies share: models, prompts, batched and timed decoding.

The studies (:mod:`~lcoupling.studies.specdec_iid`,
:mod:`~lcoupling.studies.specdec_diverse`,
:mod:`~lcoupling.studies.specdec_matching`,
:mod:`~lcoupling.studies.specdec_consistency`) read the same config fields
(:func:`add_common_fields`, checked by :func:`validate_common`):

``target``
    any :func:`lcoupling.lm.load` spec (``"smollm2-135m"``, ``"gguf:PATH"``,
    ``"hf:DIR"``); ``dtype`` (``"auto"``: float32 on CPU, bfloat16 on an
    accelerator) and ``data_dir`` (where ``make lm`` put the assets).
``prompts``, ``prompt_field``, ``prompt_format``, ``prompt_indices``
    the prompt set: ``"humaneval"`` (the 164 HumanEval problems) or
    ``"jsonl:PATH"`` (field ``prompt_field`` of every line); ``"raw"`` feeds
    the text as is (code completion), ``"chat"`` wraps it as one user turn
    with the tokenizer's chat template; ``prompt_indices`` selects prompts by
    their index in the set (empty: all).
``drafter``, ``drafter_corpus``, ``drafter_corpus_indices``, ``drafter_cache_dir``
    a drafter spec of :func:`lcoupling.lm.distill.load_drafter`
    (``"early_exit_linear:M"``, ``"soft_bigram"``, ``"dir:DIR"``,
    ``"model:SPEC"``; :func:`lcoupling.lm.drafters.parse_spec`). The first
    two are built from the target on a corpus: the prompts
    ``drafter_corpus_indices`` of the prompt set ``drafter_corpus``, tokenized
    in the study's ``prompt_format`` and teacher-forced (by default HumanEval
    0..109, so HumanEval 110..163 are held out). They are cached
    under ``drafter_cache_dir/<digest of target, dtype and corpus>/``; the
    configs default to ``"{workdir}/../drafters"``, i.e. one cache shared by
    every run whose work directory sits in the same folder (``runs/``).
``top_k``, ``num_seeds``, ``max_new_tokens``, ``stop_at_eos``
    top-k filtering of target and drafter (0: none); seeds ``0..num_seeds-1``;
    tokens generated per prompt (generation also stops after the tokenizer's
    eos id when ``stop_at_eos``).
``batch_size``, ``prompt_pad_multiple``
    sequences per vmapped :func:`lcoupling.specdec.generate` call; prompts
    are right-padded to one buffer (the longest selected prompt rounded up to
    ``prompt_pad_multiple``) and passed with ``prompt_length``, so every
    prompt and seed shares one compilation.
``timing_prompts``, ``timing_seeds``
    the token rate is measured on these prompt indices for the first
    ``timing_seeds`` seeds (:func:`time_generation`).

Randomness
----------
The generation key of prompt ``i`` under seed ``s`` is
``fold_in(fold_in(key, s), i)`` (:func:`sequence_key`, ``i`` the index in the
prompt set) -- never the scheme, ``K`` or the sweep position -- so every
scheme sees common random numbers: ``gls_strong`` reproduces
``autoregressive`` token for token with the same key, and differences between
schemes are not sampling noise of different seeds. Results do not depend on
``batch_size`` or on which points ran in the same process.

Models, prompts and drafters are cached in the process (:func:`load_target`,
:func:`load_prompts`, :func:`load_drafter`), so the points of a run do not
reload the 540 MB target.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import time
from collections import OrderedDict
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling.studies import common
from lcoupling.validation import (check_choice, check_int, check_int_tuple, check_nonempty_str,
                                  need)

__all__ = ["PROMPT_FORMATS", "add_common_fields", "validate_common", "load_target", "load_prompts",
           "load_drafter", "Prompts", "check_prompt_set", "prompt_texts", "sequence_key", "eos_id",
           "generate_batch", "time_generation", "seed_stats", "specdec_point",
           "summarize_specdec", "SPEEDUP_REFERENCE"]

PROMPT_FORMATS = ("raw", "chat")
#: The scheme whose token rate ``speedup_vs_sps`` divides by (same ``L``).
SPEEDUP_REFERENCE = "sps"


# --------------------------------------------------------------------------
# Config fields and their validation.
# --------------------------------------------------------------------------


def add_common_fields(c, *, quick: bool, timing: bool = True) -> None:
  """Adds the shared fields (module docstring) with the defaults of the full / quick protocol.

  ``timing=False`` leaves out ``timing_prompts`` / ``timing_seeds`` (studies
  without a token rate).
  """
  c.prng_impl = "threefry2x32"  # the decoder addresses race times by counter
  c.chunk_size = 1  # unused (the runner's required field); batching is `batch_size`
  c.target = "smollm2-135m"
  c.dtype = "auto"
  c.data_dir = "data"
  c.prompts = "humaneval"
  c.prompt_field = "prompt"
  c.prompt_format = "raw"
  # the quick runs: 6 held-out HumanEval prompts (the shortest of 110..163, 68..90 tokens, so the
  # prefill of the padded buffer stays cheap); the full protocol: all 164 (0..109 were the
  # built drafters' corpus)
  c.prompt_indices = (114, 131, 138, 150, 155, 162) if quick else ()
  c.drafter = "early_exit_linear:4"
  c.drafter_corpus = "humaneval"
  c.drafter_corpus_indices = tuple(range(110))
  c.drafter_cache_dir = "{workdir}/../drafters"
  c.top_k = 50
  c.num_seeds = 2 if quick else 5
  c.max_new_tokens = 24 if quick else 128
  c.stop_at_eos = True
  c.batch_size = 12 if quick else 8  # quick: 6 prompts x 2 seeds in one call
  c.prompt_pad_multiple = 32 if quick else 64
  if timing:
    c.timing_prompts = (114,) if quick else (110, 120, 130, 140, 150, 160)
    c.timing_seeds = 1 if quick else 2


def check_prompt_set(config, field: str) -> None:
  """Checks that ``config[field]`` is ``'humaneval'`` or ``'jsonl:PATH'`` of an existing file.

  A JSONL file is read: every line must be an object with the string field
  ``config.prompt_field`` (``ValueError`` naming the line otherwise).
  """
  spec = config[field]
  need(isinstance(spec, str) and (spec == "humaneval" or (spec.startswith("jsonl:") and
                                                         len(spec) > 6)),
       f"config.{field} must be 'humaneval' or 'jsonl:PATH', got {spec!r}")
  if spec.startswith("jsonl:"):
    path = os.path.expanduser(spec[6:])
    if not os.path.isfile(path):
      raise FileNotFoundError(f"config.{field}: prompt file {path!r} not found (relative paths "
                              f"are relative to {os.getcwd()})")
    if isinstance(config.prompt_field, str) and config.prompt_field:
      from lcoupling.lm import prompts  # noqa: PLC0415

      try:  # every line must hold the field: refused here, not after the run has started
        prompts.read_prompts_jsonl(path, config.prompt_field)
      except ValueError as e:
        raise ValueError(f"config.{field} (config.prompt_field={config.prompt_field!r}): "
                         f"{e}") from None


def validate_common(config) -> None:
  """Checks the shared fields (module docstring); ``ValueError`` naming the field."""
  from lcoupling.lm import drafters, loading  # noqa: PLC0415

  need(config.prng_impl == "threefry2x32",
       f"config.prng_impl must be 'threefry2x32' for speculative decoding (race times are "
       f"addressed by counter), got {config.prng_impl!r}")
  for field in ("target", "drafter"):
    need(isinstance(config[field], str), f"config.{field} must be a str")
  try:
    loading.parse_spec(config.target)
  except (TypeError, ValueError) as e:
    raise ValueError(f"config.target: {e}") from None
  try:
    drafters.parse_spec(config.drafter)
  except (TypeError, ValueError) as e:
    raise ValueError(f"config.drafter: {e}") from None
  check_choice(config, "dtype", ("auto", "float32", "bfloat16"))
  check_prompt_set(config, "prompts")
  check_choice(config, "prompt_format", PROMPT_FORMATS)
  check_nonempty_str(config, "prompt_field")
  check_int_tuple(config, "prompt_indices", 0, allow_empty=True)
  kind, _ = drafters.parse_spec(config.drafter)
  need(kind not in drafters.EARLY_EXIT or kind in drafters.TRAINING_FREE,
       f"config.drafter: {config.drafter!r} is trained by configs/train_drafter.py; load the "
       "result as 'dir:DIR'")
  if kind in drafters.TRAINING_FREE:
    check_prompt_set(config, "drafter_corpus")
    check_int_tuple(config, "drafter_corpus_indices", 0, allow_empty=True)
  check_nonempty_str(config, "drafter_cache_dir", "path")
  check_int(config, "top_k", 0)
  check_int(config, "num_seeds", 1)
  check_int(config, "max_new_tokens", 1)
  need(isinstance(config.stop_at_eos, bool), "config.stop_at_eos must be a bool")
  check_int(config, "batch_size", 1)
  check_int(config, "prompt_pad_multiple", 1)
  if "timing_prompts" in config:
    check_int_tuple(config, "timing_prompts", 0, allow_empty=True)
    check_int(config, "timing_seeds", 0)
    need(config.timing_seeds <= config.num_seeds,
         f"config.timing_seeds ({config.timing_seeds}) must be <= config.num_seeds "
         f"({config.num_seeds})")


# --------------------------------------------------------------------------
# Models, prompts, drafters (cached in the process).
# --------------------------------------------------------------------------

_TARGETS: OrderedDict = OrderedDict()
_PROMPTS: dict = {}
_DRAFTERS: OrderedDict = OrderedDict()
_MAX_MODELS = 2  # a 540 MB target: keep few


def _remember(cache: OrderedDict, key, value):
  cache[key] = value
  cache.move_to_end(key)
  while len(cache) > _MAX_MODELS:
    cache.popitem(last=False)
  return value


def _dtype(config):
  return None if config.dtype == "auto" else config.dtype


def load_target(config):
  """The :class:`lcoupling.lm.LoadedLM` of ``config.target`` (loaded once per process)."""
  from lcoupling import lm  # noqa: PLC0415

  key = (config.target, config.dtype, str(pathlib.Path(config.data_dir).resolve()))
  if key in _TARGETS:
    _TARGETS.move_to_end(key)
    return _TARGETS[key]
  return _remember(_TARGETS, key, lm.load(config.target, dtype=_dtype(config),
                                          data_dir=config.data_dir))


def prompt_texts(spec: str, field: str, data_dir) -> list[str]:
  """The texts of a prompt set (``'humaneval'`` or ``'jsonl:PATH'``, field ``field``)."""
  from lcoupling import lm  # noqa: PLC0415

  if spec == "humaneval":
    return lm.humaneval_prompts(data_dir)
  return lm.read_prompts_jsonl(os.path.expanduser(spec[len("jsonl:"):]), field)


def _encode(tokenizer, text: str, fmt: str) -> list[int]:
  if fmt == "chat":
    return tokenizer.encode_chat([{"role": "user", "content": text}])
  return tokenizer.encode(text)


@dataclasses.dataclass(frozen=True)
class Prompts:
  """Selected prompts: their indices in the prompt set, texts and token ids."""

  indices: tuple[int, ...]
  texts: tuple[str, ...]
  tokens: tuple[tuple[int, ...], ...]

  def select(self, indices: Sequence[int], field: str) -> Prompts:
    pos = {i: n for n, i in enumerate(self.indices)}
    missing = [i for i in indices if i not in pos]
    if missing:
      raise ValueError(f"config.{field}: prompts {missing} are not in the prompt set "
                       f"(indices 0..{max(self.indices)})")
    return Prompts(tuple(indices), tuple(self.texts[pos[i]] for i in indices),
                   tuple(self.tokens[pos[i]] for i in indices))

  def buffer(self, multiple: int, pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(int32[n, P], lengths int32[n])``: right-padded to a multiple of ``multiple``."""
    from lcoupling.lm import distill  # noqa: PLC0415

    return distill.pad_prompts(self.tokens, multiple=multiple, pad_id=pad_id)


def load_prompts(config, tokenizer, *, spec_field: str = "prompts",
                 indices_field: str = "prompt_indices") -> Prompts:
  """The prompts of ``config[spec_field]`` selected by ``config[indices_field]`` (empty: all)."""
  spec = config[spec_field]
  key = (spec, config.prompt_field, config.prompt_format, str(pathlib.Path(
      config.data_dir).resolve()), tokenizer)  # the object (kept alive), not a reusable id()
  if key not in _PROMPTS:
    texts = prompt_texts(spec, config.prompt_field, config.data_dir)
    try:
      tokens = tuple(tuple(_encode(tokenizer, t, config.prompt_format)) for t in texts)
    except ValueError as e:
      raise ValueError(f"config.prompt_format={config.prompt_format!r}: {e}") from None
    _PROMPTS[key] = Prompts(tuple(range(len(texts))), tuple(texts), tokens)
  allp = _PROMPTS[key]
  wanted = tuple(config[indices_field]) or allp.indices
  bad = [i for i in wanted if i >= len(allp.indices)]
  if bad:
    raise ValueError(f"config.{indices_field}: indices {bad} out of range; {spec!r} has "
                     f"{len(allp.indices)} prompts")
  out = allp.select(wanted, indices_field)
  empty = [i for i, t in zip(out.indices, out.tokens) if not t]
  if empty:
    raise ValueError(f"config.{indices_field}: prompts {empty} encode to no tokens")
  return out


def _digest(*parts) -> str:
  h = hashlib.sha256()
  for p in parts:
    h.update(json.dumps(p, sort_keys=True, default=str).encode())
  return h.hexdigest()[:16]


def load_drafter(config, loaded, *, progress: bool = False):
  """The drafter of ``config.drafter`` for the target ``loaded`` (cached; built once on disk).

  Drafters built from the target (``soft_bigram``, ``early_exit_linear:M``)
  are cached in ``drafter_cache_dir/<digest>/`` where the digest covers the
  target spec, dtype, vocabulary and the corpus token ids (so a cache never
  serves another target or corpus); a build saves its parts as it goes, so an
  interrupted run resumes it (:func:`lcoupling.lm.distill.load_drafter`).
  ``progress``: a status line and a progress bar while a drafter is built (a
  study's ``run_point(..., progress=)``).
  """
  from lcoupling.lm import distill, drafters  # noqa: PLC0415

  kind, _ = drafters.parse_spec(config.drafter)
  corpus, cache_dir = None, None
  if kind in drafters.TRAINING_FREE:
    corpus_prompts = load_prompts(config, loaded.tokenizer, spec_field="drafter_corpus",
                                  indices_field="drafter_corpus_indices")
    corpus = [list(t) for t in corpus_prompts.tokens]
    digest = _digest(config.target, config.dtype, loaded.config.vocab_size,
                     loaded.config.hidden_size, corpus)
    cache_dir = pathlib.Path(config.drafter_cache_dir).expanduser().resolve() / digest
  # keyed by the specs that determine the target (not id(), which a new model can reuse)
  key = (config.target, config.dtype, str(pathlib.Path(config.data_dir).resolve()),
         config.drafter, str(cache_dir))
  if key in _DRAFTERS:
    _DRAFTERS.move_to_end(key)
    return _DRAFTERS[key]
  if cache_dir is not None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    info = {"target": config.target, "dtype": config.dtype, "drafter": config.drafter,
            "corpus": f"{config.drafter_corpus}[{list(config.drafter_corpus_indices) or 'all'}] "
                      f"({config.prompt_format}, {sum(map(len, corpus))} tokens)"}
    from lcoupling import results  # noqa: PLC0415

    results.atomic_write_json(cache_dir / "source.json", info)
  drafter = distill.load_drafter(config.drafter, loaded.model, corpus=corpus, cache_dir=cache_dir,
                                 data_dir=config.data_dir, dtype=_dtype(config), progress=progress)
  if getattr(drafter, "vocab_size", None) != loaded.model.vocab_size:
    raise ValueError(f"config.drafter {config.drafter!r} has a vocabulary of "
                     f"{getattr(drafter, 'vocab_size', None)} tokens but the target has "
                     f"{loaded.model.vocab_size}")
  return _remember(_DRAFTERS, key, drafter)


def eos_id(config, loaded) -> int | None:
  """The tokenizer's (first) eos id when ``config.stop_at_eos``, else ``None``."""
  if not config.stop_at_eos:
    return None
  e = loaded.tokenizer.eos_id
  return None if e is None or e >= loaded.model.vocab_size else int(e)


def sequence_key(key, seed: int, prompt_index: int):
  """``fold_in(fold_in(key, seed), prompt_index)``: the generation key of one sequence."""
  return jax.random.fold_in(jax.random.fold_in(key, seed), prompt_index)


# --------------------------------------------------------------------------
# Batched generation (block efficiency) and timed generation (token rate).
# --------------------------------------------------------------------------


def generate_batch(key, config, target, drafter, prompts: Prompts, seeds: Sequence[int], *,
                   scheme: str, num_drafts: int, draft_length: int, temperature: float,
                   draft_temperatures=None, eos: int | None, progress: bool = False,
                   desc: str = ""):
  """Every (seed, prompt) through :func:`lcoupling.specdec.metrics.batched_generate`: its
  :class:`~lcoupling.specdec.Generation` (numpy arrays ``[num_seeds, num_prompts, ...]``).

  The prompts share one padded buffer (``prompt_length`` per row) and each
  chunk of ``config.batch_size`` sequences is one vmapped call of the same
  shape, so a configuration compiles once; the key of (seed, prompt) is
  :func:`sequence_key`. ``draft_temperatures`` (a tuple of ``K``, or an array ``[S, P, K]``
  of per-sequence tuples; ``None``: the target's ``temperature``) is passed
  traced, so every temperature setting shares the compilation too.
  """
  from lcoupling.specdec import metrics  # noqa: PLC0415
  from tqdm.auto import tqdm  # noqa: PLC0415

  buf, lens = prompts.buffer(config.prompt_pad_multiple)
  s_n, p_n = len(seeds), len(prompts.indices)
  temps = None
  if scheme != "autoregressive":  # always traced (also when all equal `temperature`): one
    # compilation serves every temperature setting of a (scheme, K, L)
    t = np.asarray(temperature if draft_temperatures is None else draft_temperatures,
                   np.float32)
    temps = np.broadcast_to(t, (s_n, p_n, num_drafts)) if t.ndim < 3 else t
  kw = dict(scheme=scheme, num_drafts=num_drafts, max_new_tokens=config.max_new_tokens,
            temperature=temperature, top_k=config.top_k, eos_id=eos)
  if scheme != "autoregressive":
    kw.update(drafter=drafter, draft_length=draft_length)
  keys = jnp.stack([jnp.stack([sequence_key(key, seeds[s], prompts.indices[p])
                               for p in range(p_n)]) for s in range(s_n)])
  bar = tqdm(total=s_n * p_n, desc=desc or scheme, unit="seq", disable=not progress,
             leave=False, dynamic_ncols=True)
  bar.set_postfix_str("compiling + first chunk")  # the first call compiles: say so, not 0/N

  def advance(n):
    bar.set_postfix_str("")
    bar.update(n)

  gen = metrics.batched_generate(keys, target, buf, lens, batch_size=config.batch_size,
                                 draft_temperatures=temps, progress=advance, **kw)
  bar.close()
  return gen


_WARMED: set = set()


def _signature(model) -> tuple:
  """What a compiled decoder depends on of a model (or tuple of models, or ``None``): its pytree
  structure and the shapes and dtypes of its leaves (hashable; no reference to the object)."""
  leaves, treedef = jax.tree.flatten(model)
  return treedef, tuple((np.shape(x), str(getattr(x, "dtype", type(x).__name__))) for x in leaves)


def time_generation(key, config, target, drafter, prompts: Prompts, seeds: Sequence[int], *,
                    scheme: str, num_drafts: int, draft_length: int, temperature: float,
                    draft_temperatures=None, eos: int | None) -> dict:
  """Wall-clock token rate of single-sequence decoding, with its draft / target / verify split.

  Each (seed, prompt) is decoded alone (batch 1) by
  :func:`lcoupling.specdec.metrics.timed_generate`, which runs the same
  computation as ``generate`` (same tokens for the same key) as separately
  jitted phases and times each; the first call of a configuration (scheme,
  ``K``, ``L``, buffer size) in the process also runs one untimed warm-up
  decode, so no compilation is timed. The prompts share one padded buffer, so
  every call uses one compilation. The token rate is generated tokens over
  the *decode* time (draft + target + verify; the prompt prefill, the same for
  every speculative scheme, is reported separately as ``prefill_seconds``).

  Returns per-seed lists: ``token_rate``, ``token_rate_with_prefill``,
  ``draft_ms_per_token``, ``target_ms_per_token``, ``verify_ms_per_token``,
  ``prefill_seconds`` (mean per prompt), ``tokens``, ``blocks``.
  """
  from lcoupling.specdec import metrics  # noqa: PLC0415

  buf, lens = prompts.buffer(config.prompt_pad_multiple)
  kw = dict(scheme=scheme, num_drafts=num_drafts, max_new_tokens=config.max_new_tokens,
            temperature=temperature, top_k=config.top_k, eos_id=eos)
  if scheme != "autoregressive":
    kw.update(drafter=drafter, draft_length=draft_length, draft_temperatures=draft_temperatures)
  out = {k: [] for k in ("token_rate", "token_rate_with_prefill", "draft_ms_per_token",
                         "target_ms_per_token", "verify_ms_per_token", "prefill_seconds",
                         "tokens", "blocks")}
  # one untimed warm-up decode per compiled configuration and process. The key holds
  # everything the decoder's compilation depends on (and more: the scheme itself, not its
  # compiled walk) -- of the models their structure and shapes, not id() (which a new model
  # can reuse after an old one is freed) -- so a configuration is never timed before it was
  # warmed up.
  warm_key = (_signature(target), _signature(drafter), scheme, num_drafts, draft_length,
              config.max_new_tokens, config.top_k, buf.shape[1])
  first = warm_key not in _WARMED
  for seed in seeds:
    tot = dict(tokens=0, blocks=0, draft=0.0, target=0.0, verify=0.0, prefill=0.0)
    for p, index in enumerate(prompts.indices):
      gen, t = metrics.timed_generate(sequence_key(key, seed, index), target, jnp.asarray(buf[p]),
                                      prompt_length=int(lens[p]), warmup=first, **kw)
      first = False
      _WARMED.add(warm_key)
      tot["tokens"] += int(gen.length)
      tot["blocks"] += t.num_blocks
      for f in ("draft", "target", "verify", "prefill"):
        tot[f] += getattr(t, f)
    decode = tot["draft"] + tot["target"] + tot["verify"]
    n = max(tot["tokens"], 1)
    out["token_rate"].append(tot["tokens"] / decode)
    out["token_rate_with_prefill"].append(tot["tokens"] / (decode + tot["prefill"]))
    for f in ("draft", "target", "verify"):
      out[f"{f}_ms_per_token"].append(1e3 * tot[f] / n)
    out["prefill_seconds"].append(tot["prefill"] / len(prompts.indices))
    out["tokens"].append(tot["tokens"])
    out["blocks"].append(tot["blocks"])
  return out


# --------------------------------------------------------------------------
# One speculative-decoding measurement (block efficiency + token rate) and its summary.
# --------------------------------------------------------------------------


def seed_stats(values) -> tuple[float | None, float | None]:
  """``(mean, SEM)`` over seeds (``(None, None)`` for no values; SEM ``None`` for one)."""
  values = [v for v in values if v is not None]
  if not values:
    return None, None
  return common.mean_sem(values)


def specdec_point(key, config, *, scheme: str, num_drafts: int, draft_length: int,
                  temperature: float, draft_temperatures=None, progress: bool = False) -> dict:
  """Block efficiency over every (seed, prompt), token rate on the timing prompts.

  ``autoregressive`` has block efficiency 1 by definition (one target call per
  token): only its token rate is measured. Returns one record holding the
  per-seed values (``*_per_seed``); :func:`summarize_specdec` turns them into
  mean +- SEM.
  """
  from lcoupling.specdec import metrics  # noqa: PLC0415

  loaded = load_target(config)
  drafter = (None if scheme == "autoregressive"
             else load_drafter(config, loaded, progress=progress))
  prompts = load_prompts(config, loaded.tokenizer)
  seeds = list(range(config.num_seeds))
  eos = eos_id(config, loaded)
  kw = dict(scheme=scheme, num_drafts=num_drafts, draft_length=draft_length,
            temperature=temperature, draft_temperatures=draft_temperatures, eos=eos)
  rec = {"scheme": scheme, "K": num_drafts, "L": draft_length, "temperature": temperature,
         "draft_temperatures": (None if draft_temperatures is None
                                else [float(t) for t in draft_temperatures]),
         "num_prompts": len(prompts.indices), "num_seeds": len(seeds),
         "max_new_tokens": config.max_new_tokens}
  t0 = time.perf_counter()
  if scheme == "autoregressive":
    rec["block_efficiency_per_seed"] = [1.0] * len(seeds)
  else:
    batch = generate_batch(key, config, loaded.model, drafter, prompts, seeds,
                           progress=progress, desc=f"{scheme} K={num_drafts}", **kw)
    rec["block_efficiency_per_seed"] = metrics.block_efficiency_per_seed(
        batch.length, batch.num_target_calls).tolist()
    reached = batch.position_reached.sum(axis=(0, 1))
    acc = batch.position_accepted.sum(axis=(0, 1))
    rec["position_acceptance"] = [float(a / r) if r else None for a, r in zip(acc, reached)]
    lengths = batch.accepted_lengths.ravel()
    rec["accepted_length_histogram"] = np.bincount(lengths[lengths >= 0],
                                                   minlength=draft_length + 1).tolist()
    rec["tokens_per_seed"] = batch.length.sum(axis=1).tolist()
    rec["target_calls_per_seed"] = batch.num_target_calls.sum(axis=1).tolist()
  rec["batch_seconds"] = time.perf_counter() - t0
  timing_seeds = seeds[:config.timing_seeds]
  if config.timing_prompts and timing_seeds:
    tp = load_prompts(config, loaded.tokenizer, indices_field="timing_prompts")
    t0 = time.perf_counter()
    timing = time_generation(key, config, loaded.model, drafter, tp, timing_seeds, **kw)
    rec["timing_seconds"] = time.perf_counter() - t0
    rec["timing_prompts"] = list(tp.indices)
    rec.update({f"{k}_per_seed": v for k, v in timing.items()})
  return rec


_PER_SEED = ("block_efficiency", "token_rate", "token_rate_with_prefill", "draft_ms_per_token",
             "target_ms_per_token", "verify_ms_per_token", "prefill_seconds")


def summarize_specdec(point_records, *, reference_key) -> list[dict]:
  """Mean +- SEM over seeds of every ``*_per_seed`` field, and the speed-up over ``sps``.

  ``speedup_vs_sps`` is the mean over timed seeds of the ratio of the token
  rate to that of the ``sps`` record with the same ``reference_key(record)``
  (e.g. the same ``L``), seed by seed (common random numbers make the ratio
  less noisy than a ratio of means); ``None`` without such a record.
  """
  recs = [dict(r) for recs in point_records for r in recs]
  refs = {reference_key(r): r for r in recs if r["scheme"] == SPEEDUP_REFERENCE}
  out = []
  for r in recs:
    for f in _PER_SEED:
      r[f], r[f + "_sem"] = seed_stats(r.get(f + "_per_seed") or [])
    ref = refs.get(reference_key(r))
    ratio = []
    if ref is not None:
      ratio = [a / b for a, b in zip(r.get("token_rate_per_seed") or [],
                                     ref.get("token_rate_per_seed") or []) if b]
    r["speedup_vs_sps"], r["speedup_vs_sps_sem"] = seed_stats(ratio)
    out.append(r)
  return out


#: The paper's drafter/target family, offline (``make lm-qwen``): Qwen2.5-Coder-0.5B-Instruct
#: drafting for Qwen2.5-Coder-1.5B-Instruct (same tokenizer, 151 936 tokens).
QWEN_TARGET = "qwen2.5-coder-1.5b"
QWEN_DRAFTER = "model:qwen2.5-coder-0.5b"


def use_qwen_pair(c, *, quick: bool) -> None:
  """Switches a speculative-decoding config to the Qwen2.5-Coder 0.5B -> 1.5B pair.

  ``quick`` (the ``:qwen_quick`` variants, sized for a 2-core CPU): HumanEval
  prompts 114, 131 and 140 (held out from the SmolLM2 drafters' corpus, so the
  two families decode the same prompts) x 2 seeds in one batch, 32 new tokens,
  the token rate on prompt 140 x 1 seed, in ``bfloat16`` (the paper's dtype;
  on a CPU with bfloat16 matrix units, e.g. AMX or AVX512-BF16, it is also
  the fast one: half the weight traffic of ``float32``; on other CPUs
  ``--config.dtype=float32`` may be faster). Otherwise (``:qwen``) the paper's
  protocol of :func:`add_common_fields` (164 prompts x 5 seeds, 128 tokens): an
  accelerator job, in bfloat16 there (``dtype = "auto"``).
  """
  c.target = QWEN_TARGET
  c.drafter = QWEN_DRAFTER
  if quick:
    c.dtype = "bfloat16"
    c.prompt_indices = (114, 131, 140)
    c.num_seeds = 2
    c.max_new_tokens = 32
    c.batch_size = 6
    c.prompt_pad_multiple = 32
    if "timing_prompts" in c:
      c.timing_prompts = (140,)
      c.timing_seeds = 1
