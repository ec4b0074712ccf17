"""``python -m lamo …`` ≡ ``lamo …`` (what ``torchrun`` / ``accelerate launch -m lamo`` start)."""
import sys

from .cli import main

sys.exit(main())
