"""Trainers that run under ``accelerate`` (one process on a CPU to many GPUs)."""
