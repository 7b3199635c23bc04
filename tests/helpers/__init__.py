"""Shared test helpers (fixture data, fake runs, tiny learned datasets, the workflow runner): helpers.<module>."""
