"""LaMo's version, in a module of its own so ``lamo --version`` reads it without importing torch."""
__version__ = "0.1.0"
