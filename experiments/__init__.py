"""Measurements and model studies that use the kit (`python -m experiments.<name>`); see README.md."""
