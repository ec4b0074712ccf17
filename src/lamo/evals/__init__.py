"""Harnesses for the benchmarks the paper reports (VideoPhy, VideoPhy2, VBench)."""
