import os
import sys

import pytest
import torch

# Tests share helpers (tests/tiny_models.py) by plain import.
sys.path.insert(0, os.path.dirname(__file__))
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
