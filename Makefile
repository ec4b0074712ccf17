# LaMo — the two commands: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of PyTorch. An unpinned `torch` from PyPI is the multi-GB CUDA build, so torch comes, in
# this order, from: the venv (a torch already there is kept — install a CUDA build into .venv first to use
# a GPU), this machine's own pip sources with no network (`--no-index`: find-links, a wheel house), then
# PyTorch's CPU index alone (TORCH_INDEX, which also serves torch's dependencies: with PyPI beside it, an
# unreachable CPU index would let pip take PyPI's CUDA build), each tried quickly.
TORCH       ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP_TIMEOUT ?= 15
STAMP  := $(VENV)/.installed

.PHONY: all venv torch test demo clean

all: test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(MAKE) --no-print-directory torch
	$(PY) -m pip install -q -e ".[train,dev]"
	touch $(STAMP)

venv: $(STAMP)

# CPU PyTorch into $(VENV) unless it already holds a torch (see above).
torch:
	@$(PY) -c "import torch" 2>/dev/null && echo "torch: keeping the venv's $$($(PY) -c 'import torch; print(torch.__version__)')" \
	  || { $(PY) -m pip install -q --no-index --no-deps "$(TORCH)" 2>/dev/null && $(PY) -m pip install -q "$(TORCH)"; } \
	  || $(PY) -m pip install -q --timeout $(PIP_TIMEOUT) --retries 0 --index-url $(TORCH_INDEX) "$(TORCH)" \
	  || { echo "could not install $(TORCH) (CPU build): $(TORCH_INDEX) not reachable and no local wheel;" \
	            "install torch into $(VENV) yourself (any build), then run make again" >&2; exit 1; }

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/lamo demo --out report

clean:
	rm -rf $(VENV) report build src/*.egg-info
