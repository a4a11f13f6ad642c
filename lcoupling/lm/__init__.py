# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Language models in JAX: a Llama-family decoder with a KV cache, loaders, sampling.

::

    lcoupling.lm.load(spec)             # "smollm2-135m" | "gguf:PATH" | "hf:DIR" -> LoadedLM (loading.py)
    lcoupling.lm.Llama, LlamaConfig     # Flax NNX decoder (model.py)
    lcoupling.lm.MarkovLM               # enumerable toy LM, same interface (markov.py)
    lcoupling.lm.LanguageModel          # the interface every model implements
    lcoupling.lm.Tokenizer              # tokenizers + bos/eos + chat template (tokenizer.py)
    lcoupling.lm.cache                  # KVCache and row operations
    lcoupling.lm.sampling               # temperature / top-k / top-p / greedy
    lcoupling.lm.generate               # plain sampling loop, perplexity
    lcoupling.lm.gguf_io, hf_io         # checkpoint readers
    lcoupling.lm.assets, prompts        # offline assets (make lm), HumanEval, JSONL prompts
    lcoupling.lm.drafters, distill      # drafters (soft bigram, early exit) and how to build/train them

Command line: ``python -m lcoupling.lm {fetch,generate,perplexity}`` (``__main__.py``).
"""

from lcoupling.lm import (assets, cache, distill, drafters, generate, gguf_io, hf_io, prompts,
                          sampling)
from lcoupling.lm.assets import AssetError, fetch_assets
from lcoupling.lm.cache import KVCache
from lcoupling.lm.generate import perplexity, sample, token_log_probs
from lcoupling.lm.loading import LoadedLM, architecture, build_llama, load
from lcoupling.lm.markov import MarkovLM, sequence_probabilities
from lcoupling.lm.model import LanguageModel, Llama, LlamaConfig, check_tokens
from lcoupling.lm.prompts import humaneval_problems, humaneval_prompts, read_prompts_jsonl
from lcoupling.lm.tokenizer import Tokenizer

__all__ = ["Llama", "LlamaConfig", "LanguageModel", "MarkovLM", "KVCache", "cache", "sampling",
           "sequence_probabilities", "check_tokens", "load", "LoadedLM", "build_llama",
           "architecture", "Tokenizer", "sample", "perplexity", "token_log_probs", "generate",
           "gguf_io", "hf_io", "assets", "prompts", "AssetError", "fetch_assets",
           "humaneval_problems", "humaneval_prompts", "read_prompts_jsonl", "drafters", "distill"]
