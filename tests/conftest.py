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


@pytest.fixture(scope="module")
def latent_cache(tmp_path_factory):
    """A tiny `lamo cache` folder (8 clips of 5 × 4 × 8 × 8 latents, prompt embeddings of 6 × 8), one per test file."""
    from tiny_models import write_tiny_latent_cache

    return write_tiny_latent_cache(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def drifting_cache(tmp_path_factory):
    """A tiny CogVideoX pipeline and an 8-clip latent cache whose channel means drift (the fine-tune tests'):
    ``(root, latents, prompt_embeds)`` with ``root/model`` and ``root/cache``, one per test file."""
    from tiny_models import write_tiny_drifting_cache

    root = tmp_path_factory.mktemp("drifting")
    latents, embeds = write_tiny_drifting_cache(root)
    return root, latents, embeds
