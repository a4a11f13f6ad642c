# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The MNIST compression study (paper §5, Tables 13-14, Figures 3-4; docs/method.md §5.3).

It is the image compression study :mod:`lcoupling.studies.image_codec` with
``config.dataset = "mnist"`` (``configs/mnist.py``); this module is its
registry name (:data:`lcoupling.studies.STUDIES`) and its printer::

  python -m lcoupling.studies.mnist runs/mnist_quick     # the markdown tables
"""

import sys

from lcoupling.studies.image_codec import *  # noqa: F401,F403
from lcoupling.studies.image_codec import __all__  # noqa: F401
from lcoupling.studies.image_codec import report


def main(argv=None) -> int:
  """``python -m lcoupling.studies.mnist WORKDIR_OR_RESULTS_JSON [FIELD ...]``."""
  return report.main(argv, study="mnist")


if __name__ == "__main__":
  sys.exit(main())
