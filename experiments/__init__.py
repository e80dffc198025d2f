"""Experiments: benchmark scripts that run real models on real data and print a table."""
