"""File formats of the systems courses grade in (Gradescope), shared by the grader and the GLUE harness.

Imports nothing of the kit, so both sides write these files through one function.
"""
