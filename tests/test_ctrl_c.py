# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Ctrl-C at any moment of ``lcoupling-run`` exits with status 130, and the rerun resumes.

A small toy run (many cheap points) is interrupted with SIGINT at several
moments: during start-up (flag parsing, imports), during the first point's
compilation, and between finished points. Every time the exit status must be
130 (never a segfault, 139 / -11, from an interpreter teardown under running
XLA threads: :func:`lcoupling.cli.exit_process`), the last stderr line says how
to resume, and the rerun resumes the points already written.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from lcoupling import results as results_lib

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARGS = ["--noprogress", "--config.num_pairs=4", "--config.num_samples=2000",
        "--config.chunk_size=500", "--config.num_coupling_pairs=2",
        "--config.coupling_samples=200", "--config.num_drafts=" + str(tuple(range(1, 41)))]


def _start(workdir):
  env = {**os.environ, "PYTHONPATH": str(ROOT)}
  # Python's own Ctrl-C handler first, whatever SIGINT disposition the test process passes on: a
  # suite started in the background by a non-interactive shell (`make test &`) ignores SIGINT, and
  # an ignored disposition is inherited, so the run would never see the Ctrl-C
  return subprocess.Popen([sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, "
                           "signal.default_int_handler); from experiments.run import entry_point; "
                           "entry_point()", "--config", "toy:quick", "--workdir", str(workdir),
                           *ARGS], cwd=workdir.parent, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _interrupt(workdir, when):
  """SIGINT after ``when`` seconds, or (``when = 'point'``) once a new point is written."""
  before = _done(workdir)
  proc = _start(workdir)
  deadline = time.monotonic() + 240
  if when == "point":
    while _done(workdir) <= before and proc.poll() is None and time.monotonic() < deadline:
      time.sleep(0.05)
  else:
    time.sleep(when)
  assert proc.poll() is None, proc.communicate()
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, (proc.returncode, err[-2000:])
  assert "Traceback" not in err and "Segmentation" not in err, err[-2000:]
  assert err.strip().splitlines()[-1] == "interrupted; rerun the same command to resume", err
  return out, err


def _done(workdir):
  if not (workdir / "results.jsonl").exists():
    return 0
  return len(results_lib.repair_jsonl(workdir / "results.jsonl"))


def test_ctrl_c_exits_130_at_several_moments_and_resumes(tmp_path):
  w = tmp_path / "w"
  _interrupt(w, 1.0)  # start-up: the imports (jax) or flag parsing
  _interrupt(w, "point")  # just after the first point is written
  first = _done(w)
  assert first >= 1
  _interrupt(w, "point")  # the rerun resumes, then is interrupted again
  assert _done(w) > first
  points = [json.dumps(e["point"], sort_keys=True)
            for e in results_lib.repair_jsonl(w / "results.jsonl")]
  assert len(set(points)) == len(points)  # resumed: no finished point was computed twice


@pytest.mark.slow
@pytest.mark.parametrize("delay", [1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 11.0])
def test_ctrl_c_exits_130_repeatedly(tmp_path, delay):
  w = tmp_path / "w"
  _interrupt(w, delay)
  before = _done(w)
  _interrupt(w, "point")
  assert _done(w) > before
