"""The README's Python quick start runs, verbatim: the first ```python block after ``<!-- quickstart:python -->``;
so does docs/architecture.md's method-from-Python block (after ``<!-- runnable:python -->``)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- quickstart:python -->"


def quickstart_code(text: str, marker: str = MARKER) -> str:
    """The first ```python fenced block following the marker line."""
    assert marker in text, f"no {marker} line above the Python block"
    after = text.split(marker, 1)[1]
    match = re.search(r"^```python\n(.*?)^```", after, flags=re.S | re.M)
    assert match, f"no ```python block after {marker}"
    return match.group(1)


def test_the_readme_python_quickstart_runs_verbatim(tmp_path):
    code = quickstart_code(README.read_text())
    assert len(code.strip().splitlines()) <= 12  # a quick start reads in one glance
    (tmp_path / "quickstart.py").write_text(code)
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(README.parent / "src"), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "quickstart.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    written = [p for p in tmp_path.iterdir() if p.suffix == ".mp4"]
    assert written and all(p.stat().st_size > 0 for p in written)  # it writes the video it promises


def test_the_architecture_pages_method_block_runs_verbatim(tmp_path):
    page = README.parent / "docs" / "architecture.md"
    (tmp_path / "method.py").write_text(quickstart_code(page.read_text(), "<!-- runnable:python -->"))
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(README.parent / "src"), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "method.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (tmp_path / "my-prior" / "config.json").is_file()  # the prior it saves and loads back
