# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Studies: the experiments that :mod:`lcoupling.runner` executes.

A study is a module with four functions. The runner (and a notebook) calls
them; none of them touches the work directory's results files. Config fields
written ``"{workdir}/..."`` reach them resolved to paths inside the work
directory (:func:`lcoupling.runner.resolve_workdir_paths`): that is where a
study puts other run outputs, e.g. checkpoints::

    validate(config) -> None
        Raise ``ValueError`` naming the field (``"config.num_drafts ..."``) for any
        bad value. Called before any work or file write.
    run_point(key, config, point, *, mesh, progress) -> list[dict]
        Compute ONE sweep point (a JSON-able dict produced by the config file's
        ``get_sweep(config)``). ``key`` is ``jax.random.key(config.seed,
        impl=config.prng_impl)``; the study folds in the point's own indices
        (never its position in the sweep), so results do not depend on sweep
        order, chunking, device count or resumption. ``mesh`` is the 1-D
        ``'trials'`` mesh of :mod:`lcoupling.parallel`; ``progress`` says whether
        an inner tqdm bar may be shown. Returns flat JSON-able records.
    summarize(config, point_records) -> list[dict]
        ``point_records`` is the list (in sweep order) of what ``run_point``
        returned for every point. Returns the records of ``results.json``
        (e.g. mean +- SEM over repeats, per-cell selection).
    plot(results, figdir) -> list[pathlib.Path]
        Makes the figures from a loaded ``results.json`` dict ONLY; writes PNG
        and PDF files under ``figdir``; returns the paths written.

and a table printer, ``python -m lcoupling.studies.NAME WORKDIR``::

    def tables(results, *args) -> str: ...   # markdown tables of a results.json dict
    def main(argv=None):
      return common.study_main("NAME", tables, argv)
    if __name__ == "__main__":
      sys.exit(main())

(:func:`lcoupling.studies.common.study_main` checks ``meta.study`` and prints
one-line errors naming the file). ``mnist`` and ``cifar10`` are one study,
:mod:`lcoupling.studies.image_codec`, under two registry names (each with its
own printer; ``python -m lcoupling.studies.image_codec`` prints either).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["STUDIES", "get"]

#: Study name (``config.study``) -> module.
STUDIES = {
    "toy": "lcoupling.studies.toy",
    "gaussian": "lcoupling.studies.gaussian",
    "mnist": "lcoupling.studies.mnist",
    "cifar10": "lcoupling.studies.cifar10",
    "train_drafter": "lcoupling.studies.train_drafter",
    "specdec_iid": "lcoupling.studies.specdec_iid",
    "specdec_diverse": "lcoupling.studies.specdec_diverse",
    "specdec_matching": "lcoupling.studies.specdec_matching",
    "specdec_consistency": "lcoupling.studies.specdec_consistency",
}


def get(name: str) -> ModuleType:
  """The study module registered under ``name``."""
  if name not in STUDIES:
    raise ValueError(f"config.study: unknown study {name!r}; known: {sorted(STUDIES)}")
  return importlib.import_module(STUDIES[name])
