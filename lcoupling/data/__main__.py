# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""``python -m lcoupling.data fetch|verify --data_dir DIR`` (see :func:`lcoupling.data.main`)."""

import sys

from lcoupling.data import main

if __name__ == "__main__":
  sys.exit(main())
