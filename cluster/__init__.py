"""Where grading and benchmark jobs run: local processes (default) or a Ray cluster."""
