# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The CIFAR-10 compression study (paper App. D.4, Tables 15-16; docs/method.md §5.3).

It is the image compression study :mod:`lcoupling.studies.image_codec` with
``config.dataset = "cifar10"`` (``configs/cifar10.py``); this module is its
registry name (:data:`lcoupling.studies.STUDIES`) and its printer::

  python -m lcoupling.studies.cifar10 runs/cifar10_quick     # the markdown tables
"""

import sys

from lcoupling.studies.image_codec import *  # noqa: F401,F403
from lcoupling.studies.image_codec import __all__  # noqa: F401
from lcoupling.studies.image_codec import report


def main(argv=None) -> int:
  """``python -m lcoupling.studies.cifar10 WORKDIR_OR_RESULTS_JSON [FIELD ...]``."""
  return report.main(argv, study="cifar10")


if __name__ == "__main__":
  sys.exit(main())
