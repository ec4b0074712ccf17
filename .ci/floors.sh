#!/usr/bin/env bash
# The floors in pyproject.toml hold: install every dependency at the lowest version pyproject allows
# (each `name>=X` becomes the constraint `name==X`; torch through the Makefile's CPU-build route) into a
# venv of its own, then run the fast tests that touch each dependency.
#
#   .ci/floors.sh              # venv in build/floors-venv (reused when its constraints are unchanged)
#   FLOORS_VENV=DIR .ci/floors.sh
#
# A floor that fails here is moved up in pyproject.toml (not pinned around): the test that failed names
# the dependency. Prints the seconds each phase took.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${FLOORS_VENV:-build/floors-venv}
PY=$VENV/bin/python
start=$(date +%s)

# pyproject's requirements (project + train + dev extras) and their floors as `==` constraints.
mkdir -p build
"$PYTHON" - >build/floors-constraints.txt 3>build/floors-requirements.txt <<'EOF'
import os, re, sys
try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs = list(project["dependencies"])
for extra in ("train", "dev"):
    reqs += project["optional-dependencies"][extra]
with os.fdopen(3, "w") as out:
    out.write("\n".join(reqs) + "\n")
for req in reqs:
    m = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([0-9][0-9A-Za-z.]*)(\s*,.*)?", req.strip())
    if not m:
        sys.exit(f"floors: {req!r} in pyproject.toml has no `>=` floor; give every dependency one")
    print(f"{m.group(1)}=={m.group(3)}")
EOF
torch_floor=$(grep -i '^torch==' build/floors-constraints.txt)

if ! cmp -s build/floors-constraints.txt "$VENV/.floors" 2>/dev/null; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
  make --no-print-directory torch VENV="$VENV" TORCH="$torch_floor"
  # the command line's --constraint replaces any configured one: only the floors bind here
  "$PY" -m pip install -q --constraint build/floors-constraints.txt -r build/floors-requirements.txt
  cp build/floors-constraints.txt "$VENV/.floors"
fi
installed=$(date +%s)
echo "floors: installed in $((installed - start)) s:"
"$PY" -m pip list --format=freeze 2>/dev/null | grep -i -E "^($(sed 's/==.*//' build/floors-constraints.txt | paste -sd'|'))==" \
  | paste -sd' '

# The fast tests that exercise each dependency: the shipped assets (transformers' tokenizer, diffusers'
# configs), both backbones' pipelines and adapters (diffusers' private names), LoRA fine-tuning (peft,
# accelerate), the prior and its card (safetensors, huggingface_hub), video files (av, opencv), reports
# (matplotlib, pillow) and statistics (scipy).
TESTS=(
  tests/test_demo_backbone.py tests/test_pipelines.py tests/test_pipelines_i2v.py tests/test_wan22.py
  tests/test_adapters.py tests/test_prior.py tests/test_guidance.py tests/test_model_card.py tests/test_convert.py
  tests/test_train_finetune.py tests/test_cache.py tests/test_data.py tests/test_report.py tests/test_effect.py
  tests/test_properties.py tests/test_architecture.py tests/test_pipeline_defaults.py
)
PYTHONPATH=$PWD/src "$PY" -m pytest -q -p no:cacheprovider -m "not slow" "${TESTS[@]}"
echo "floors: tests passed in $(($(date +%s) - installed)) s ($(($(date +%s) - start)) s in all)"
