"""pcreg-bench: a reproducible benchmark suite for cross-domain 2-D image registration."""

__version__ = "0.1.0"
