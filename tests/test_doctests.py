# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Runs the docstring examples of the library modules."""

import doctest
import importlib

import pytest

MODULES = ["lcoupling.cli", "lcoupling.core", "lcoupling.acceptance", "lcoupling.parallel", "lcoupling.bounds",
           "lcoupling.verifiers", "lcoupling.compression", "lcoupling.compression.codec", "lcoupling.compression.message",
           "lcoupling.compression.vae", "lcoupling.compression.train", "lcoupling.data",
           "lcoupling.data.images", "lcoupling.data.loading", "lcoupling.studies.common",
           "lcoupling.studies.image_codec", "lcoupling.studies.toy",
           "lcoupling.studies.specdec_iid", "lcoupling.studies.specdec_diverse",
           "lcoupling.studies.specdec_matching", "lcoupling.studies.specdec_consistency", "lcoupling.runner",
           "lcoupling.lm.model", "lcoupling.lm.cache", "lcoupling.lm.sampling", "lcoupling.lm.markov",
           "lcoupling.lm.tokenizer", "lcoupling.lm.gguf_io", "lcoupling.lm.loading",
           "lcoupling.lm.generate", "lcoupling.lm.prompts", "lcoupling.lm.assets",
           "lcoupling.lm.drafters", "lcoupling.lm.distill", "lcoupling.lm.weight_cache",
           "lcoupling.specdec.engine", "lcoupling.specdec.metrics", "lcoupling.validation"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
  module = importlib.import_module(name)
  failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                    verbose=False)
  assert failures == 0, f"{failures} of {tried} doctest examples of {name} failed"
