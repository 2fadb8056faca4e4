"""Whole models: tune, compile and time them end to end (beside PyTorch), and profile their kernels."""
