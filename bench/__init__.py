"""Benchmarks against the anchors; run with ``python -m bench.<name>`` (needs the ``bench`` extra)."""
