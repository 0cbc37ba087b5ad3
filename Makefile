# The two commands of the quick start are `make demo` and `make test`; each installs what it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MESA_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6
# Debian's Chromium drives the app's end-to-end test (Playwright uses it; nothing is downloaded).
BROWSER_PACKAGES := chromium

.PHONY: install system-deps browser demo test bench app constraints clean

install: system-deps $(STAMP)

# Mesa's EGL (and OSMesa as fallback) for offscreen rendering on the CPU.
system-deps:
	@if ldconfig -p | grep -q 'libEGL_mesa.so' && ldconfig -p | grep -q 'libOSMesa.so'; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Mesa: $(MESA_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(MESA_PACKAGES) >/dev/null; \
	else \
		echo "Mesa EGL/OSMesa missing; run: sudo apt-get install -y $(MESA_PACKAGES)"; exit 1; \
	fi

# torch first (the CPU build on this disk), so the package's requirements do not pull a CUDA build.
# Everything else within constraints.txt, the versions the tests last ran with.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,distributed,app]"
	$(BIN)/pip install -q --no-deps imagecorruptions==1.1.2
	@touch $(STAMP)

# Rewrites constraints.txt from the venv (after a deliberate upgrade and a green `make test`).
constraints: install
	@{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt

demo: install
	$(BIN)/workbench demo --out demo_out

# Chromium for the app's browser test; without root and without it, that one test is skipped.
browser:
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing $(BROWSER_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; \
	else \
		echo "chromium missing (the app's browser test is skipped); run: sudo apt-get install -y $(BROWSER_PACKAGES)"; \
	fi

test: install browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

app: install
	$(BIN)/workbench app --data-root .

bench: install
	$(BIN)/pip install -q -e ".[dev,distributed,app,bench]" && $(BIN)/pip install -q --no-deps torchattacks==3.5.1
	$(BIN)/python benchmarks/bench_render.py --out bench_out
	$(BIN)/python benchmarks/bench_training.py --out bench_out
	$(BIN)/workbench experiment sim2real --out bench_out/sim2real
	$(BIN)/workbench experiment gan --out bench_out/gan
	$(BIN)/workbench experiment augment --out bench_out/augment
	$(BIN)/python benchmarks/bench_generators.py --out bench_out
	$(BIN)/workbench experiment semisupervised --out bench_out/semisupervised
	$(BIN)/workbench experiment noisy --out bench_out/noisy
	$(BIN)/workbench experiment conditions --out bench_out/conditions
	$(BIN)/python benchmarks/bench_corruptions.py --out bench_out
	$(BIN)/python benchmarks/bench_dense_robustness.py --out bench_out
	$(BIN)/python benchmarks/bench_attacks.py --out bench_out
	$(BIN)/python benchmarks/bench_adversarial_training.py --out bench_out
	$(BIN)/python benchmarks/bench_scene_search.py --out bench_out
	$(BIN)/workbench demo --out bench_out/demo
	$(BIN)/python benchmarks/bench_tune.py --out bench_out
	$(BIN)/python benchmarks/publish.py --from bench_out

clean:
	rm -rf demo_out bench_out
