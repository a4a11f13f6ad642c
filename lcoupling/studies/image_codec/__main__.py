# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""``python -m lcoupling.studies.image_codec WORKDIR``: the tables of an MNIST or CIFAR-10 run."""

import sys

from lcoupling.studies.image_codec.report import main

if __name__ == "__main__":
  sys.exit(main())
