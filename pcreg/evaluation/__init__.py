"""Evaluation: per-pair metrics, scoring of shards, FIRE protocol, temporal metrics, statistics, sanity audit."""
