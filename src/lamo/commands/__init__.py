"""Sub-commands of the ``lamo`` CLI: each module defines ``register(subparsers)`` and sets ``func``
on its parsers (a callable taking the parsed args and returning an exit code). Keep imports of heavy
modules inside the functions so ``lamo --help`` stays fast."""
