"""Differential privacy: the exact discrete Gaussian, its distribution, and zCDP accounting."""
