# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Sampling arguments (temperature, top-k, top-p) are checked on the host, before tracing.

The same rules in :func:`lcoupling.lm.sampling.check_sampling_args`,
:func:`lcoupling.lm.sample`, ``python -m lcoupling.lm generate`` and
:func:`lcoupling.specdec.generate`: temperature a finite number > 0 (``0`` is
refused everywhere: greedy decoding is its own switch), ``top_k`` an int in
``[0, V]``, ``top_p`` in ``(0, 1]``.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lcoupling import specdec
from lcoupling.lm import MarkovLM, generate, sampling
from lcoupling.lm import __main__ as lm_cli

V = 4
LM = MarkovLM(jnp.log(jnp.full((V, V), 1.0 / V)))

BAD_TEMPERATURES = [0.0, -1.0, math.nan, math.inf, -math.inf, np.float32(-0.5), True, "1",
                    np.array([1.0, 2.0])]


@pytest.mark.parametrize("temperature", BAD_TEMPERATURES, ids=repr)
def test_check_refuses_bad_temperature(temperature):
  with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
    sampling.check_sampling_args(temperature)


@pytest.mark.parametrize("kw, match", [
    (dict(top_k=-1), "top_k must be an int >= 0"),
    (dict(top_k=1.5), "top_k must be an int >= 0"),
    (dict(top_k=True), "top_k must be an int >= 0"),
    (dict(top_k=V + 1, vocab_size=V), "top_k = 5 is larger than the vocabulary"),
    (dict(top_p=0.0), r"top_p must be a number in \(0, 1\]"),
    (dict(top_p=1.5), r"top_p must be a number in \(0, 1\]"),
    (dict(top_p=math.nan), r"top_p must be a number in \(0, 1\]"),
])
def test_check_refuses_bad_top_k_top_p(kw, match):
  with pytest.raises(ValueError, match=match):
    sampling.check_sampling_args(**kw)


def test_check_accepts_valid_settings():
  for t in (1e-3, 0.7, 1, np.float32(2.0), jnp.float32(1.5)):
    sampling.check_sampling_args(t, top_k=np.int64(V), top_p=0.9, vocab_size=V)


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.nan, math.inf, jnp.float32(-1.0)],
                         ids=repr)
def test_sample_refuses_bad_temperature_before_tracing(temperature, monkeypatch):
  # the check runs before prefill/decode are traced: a traced decode would skip it
  traced = []
  monkeypatch.setattr(generate, "prefill", lambda *a, **k: traced.append(1))
  with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
    generate.sample(jax.random.key(0), LM, jnp.array([1]), max_new_tokens=3,
                    temperature=temperature)
  assert not traced
  with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
    generate.sample(jax.random.key(0), LM, jnp.array([1]), max_new_tokens=3, greedy=True,
                    temperature=temperature)  # ignored for greedy, but still refused


def test_sample_refuses_bad_top_k_top_p():
  with pytest.raises(ValueError, match="top_k = 5 is larger than the vocabulary"):
    generate.sample(jax.random.key(0), LM, jnp.array([1]), max_new_tokens=3, top_k=V + 1)
  with pytest.raises(ValueError, match="top_p must be"):
    generate.sample(jax.random.key(0), LM, jnp.array([1]), max_new_tokens=3, top_p=0.0)


def test_sample_valid_temperature_still_samples():
  tokens, n = generate.sample(jax.random.key(0), LM, jnp.array([1]), max_new_tokens=3,
                              temperature=0.5)
  assert int(n) == 3 and ((np.asarray(tokens) >= 0) & (np.asarray(tokens) < V)).all()


@pytest.mark.parametrize("argv, match", [
    (["--temperature", "-1"], "--temperature must be a finite number > 0"),
    (["--temperature", "0"], "greedy decoding use greedy=True / --greedy"),
    (["--temperature", "nan"], "--temperature must be a finite number > 0"),
    (["--temperature", "inf"], "--temperature must be a finite number > 0"),
    (["--top_k", "-2"], "--top_k must be an int >= 0"),
    (["--top_p", "1.5"], r"--top_p must be a number in \(0, 1\]"),
    (["--max_new_tokens", "0"], "--max_new_tokens must be >= 1"),
])
def test_lm_cli_refuses_bad_sampling_args_before_loading(argv, match, capsys, tmp_path):
  # the model file does not exist: the argument check must come first (exit 2, not 1)
  code = lm_cli.main(["generate", "--model", f"gguf:{tmp_path}/missing.gguf", "--prompt", "x",
                      *argv])
  err = capsys.readouterr().err.strip()
  assert code == 2
  assert len(err.splitlines()) == 1 and err.startswith("error: ")
  assert re.search(match, err), err


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.nan, math.inf, jnp.float32(-1.0),
                                         np.float64(0.0), True], ids=repr)
def test_specdec_refuses_bad_temperature(temperature):
  for kw in (dict(scheme="autoregressive"),
             dict(scheme="gls", drafter=LM, num_drafts=2, draft_length=2)):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
      specdec.generate(jax.random.key(0), LM, jnp.array([1]), max_new_tokens=2,
                       temperature=temperature, **kw)
  with pytest.raises(ValueError, match=r"draft_temperatures\[1\] must be a finite number > 0"):
    specdec.generate(jax.random.key(0), LM, jnp.array([1]), max_new_tokens=2, scheme="gls",
                     drafter=LM, num_drafts=2, draft_temperatures=(1.0, temperature))
