"""Pipelines: plain functions that chain library stages; the CLI and the tests call them."""
