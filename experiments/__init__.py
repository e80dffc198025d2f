"""Measurements and model studies: benchmarks of the kit's models and harness, run by hand."""
