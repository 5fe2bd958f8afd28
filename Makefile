# CXR-Bench. `make benchmark` and `make test` set everything up on a fresh clone (a .venv beside this file).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUITE ?= configs/quick.yaml
OUT ?= runs
DATA_ROOT ?=
# The Hugging Face hub is never waited on: cached ImageNet weights are read offline, and a download is only tried when
# the hub answers within seconds (lightning_modules/pretrained.py); set HF_HUB_OFFLINE=1 to never download.

.PHONY: install test benchmark sweep leaderboard perf data clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest

benchmark: install
	$(PY) -m benchmark run $(SUITE) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) --out $(OUT)

# The quick suite's sweep profile: equal random-search budgets and held-out sources (README "Fair sweeps"); its own
# results store and leaderboard, so the default suite's are untouched.
sweep: install
	$(PY) -m benchmark run configs/quick-sweep.yaml $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) --out $(OUT)-sweep --leaderboard $(OUT)-sweep/leaderboard.md

# Speed checks (not timed unit tests): siamese pairs/s, batch embedding against the two-tower forward; training
# images/s of the Lightning path against a plain PyTorch loop (docs/perf.md has the GPU paper-profile figures); the
# quick suite's time per run and in total against its budget (8 min on the phantoms, 30 with DATA_ROOT).
perf: install
	$(PY) -m benchmark.siamese_throughput
	$(PY) -m benchmark.training_throughput
	$(PY) -m benchmark.suite_timing $(SUITE) $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

leaderboard: install
	$(PY) -m benchmark leaderboard --out $(OUT)

clean:
	rm -rf $(OUT) .cache .pytest_cache

# Download the datasets that are public without an account into DATA_ROOT (default ./data), verified and resumable;
# print how to get the others (Kaggle via the kaggle CLI when configured). ONLY="cohen covidx_labels" limits it.
data: install
	$(PY) -m benchmark download --data-root $(if $(DATA_ROOT),$(DATA_ROOT),data) $(if $(ONLY),--only $(ONLY))
