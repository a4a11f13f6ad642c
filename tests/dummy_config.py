"""Config of the runner tests' dummy study."""

import ml_collections

#: num_points only selects the sweep points: a finished run may be extended.
SWEEP_FIELDS = ("num_points",)


def get_config(arg=None):
  if arg not in (None, "", "quick"):
    raise ValueError(f"unknown variant {arg!r}")
  c = ml_collections.ConfigDict()
  c.name = "dummy"
  c.description = "runner test"
  c.paper_reference = ""
  c.study = "dummy"
  c.seed = 3
  c.prng_impl = "threefry2x32"
  c.chunk_size = 7
  c.num_points = 5
  c.num_trials = 20
  c.crash_at = -1
  c.scratch_dir = "{workdir}/scratch"  # a run output: resolved under the work directory
  return c


def get_sweep(config):
  return [{"x": i} for i in range(config.num_points)]
