# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Language models in JAX: a Llama-family decoder with a KV cache, a Markov-chain LM, sampling.

::

    lcoupling.lm.Llama, LlamaConfig     # Flax NNX decoder (model.py)
    lcoupling.lm.MarkovLM               # enumerable toy LM, same interface (markov.py)
    lcoupling.lm.LanguageModel          # the interface every model implements
    lcoupling.lm.cache                  # KVCache and row operations
    lcoupling.lm.sampling               # temperature / top-k / top-p / greedy
"""

from lcoupling.lm import cache, sampling
from lcoupling.lm.cache import KVCache
from lcoupling.lm.markov import MarkovLM, sequence_probabilities
from lcoupling.lm.model import LanguageModel, Llama, LlamaConfig, check_tokens

__all__ = ["Llama", "LlamaConfig", "LanguageModel", "MarkovLM", "KVCache", "cache", "sampling",
           "sequence_probabilities", "check_tokens"]
