# The two commands of the quick start are `make demo` and `make test`; each installs what it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MESA_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6

.PHONY: install system-deps demo test bench clean

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
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev,distributed]"
	@touch $(STAMP)

demo: install
	$(BIN)/workbench demo --out demo_out

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/bench_render.py --out bench_out
	$(BIN)/python benchmarks/bench_training.py --out bench_out
	$(BIN)/workbench experiment sim2real --out bench_out/sim2real

clean:
	rm -rf demo_out bench_out
