# oneinch — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
SAMPLE := samples/oneinch_demo.dng

.PHONY: demo test install dev bench-deps test-deps lint sample bench-quality bench-looks bench-frames bench-speed bench-peers bench-burst fuzz clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	$(PY) -m oneinch.warm
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[dev]"
	$(PY) -m oneinch.warm
	@touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: $(VENV)/.installed-dev
	$(PIP) install -q -e ".[dev,bench]"
	@touch $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev
bench-deps: $(VENV)/.installed-bench

# Debian tools some tests drive as real peers (ffmpeg's lut3d, tesseract OCR, exiftool, fonts).
test-deps:
	@bash scripts/test-deps.sh

demo: install
	@$(PY) -m oneinch.warm --if-stale
	@mkdir -p out/demo
	$(PY) -m oneinch develop $(SAMPLE) -o out/demo/
	$(PY) -m oneinch develop $(SAMPLE) -o out/demo/authentic_classic_frame.jpg --look authentic --frame classic
	$(PY) -m oneinch develop $(SAMPLE) -o out/demo/vibrant.jpg --look vibrant
	$(PY) -m oneinch develop $(SAMPLE) -o out/demo/bw_hc.jpg --style bw-hc
	@echo "demo photos written to:"; ls -1 $(CURDIR)/out/demo/*.jpg

test: dev test-deps
	$(PY) -m oneinch.warm --if-stale
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: dev
	$(VENV)/bin/ruff check src tests bench

# Re-make the bundled demo raw with the project's own code (synthetic.py).
sample: install
	$(PY) -m oneinch.synthetic $(SAMPLE)

bench-quality: bench-deps
	$(PY) bench/quality.py

bench-looks: dev
	$(PY) bench/looks.py

bench-frames: dev
	$(PY) bench/frames.py

bench-speed: dev
	$(PY) bench/speed.py

# darktable-cli and rawtherapee-cli as speed peers (Debian packages; needs root)
bench-peers:
	apt-get update -qq && apt-get install -y -qq --no-install-recommends darktable rawtherapee

# Fuzz the parsers and stages with mutated files (summary in out/fuzz/summary.txt).
FUZZ_CASES ?= 100000
fuzz: dev
	$(PY) -m fuzz.run --cases $(FUZZ_CASES) --workers 2

bench-burst: dev
	$(PY) bench/burst.py

clean:
	rm -rf out .pytest_cache
