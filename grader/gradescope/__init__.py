"""Gradescope: its results.json format (`results`, shared by every exporter) and an autograder
zip that grades with the kit inside Gradescope's container (`autograder`).

`results` uses the standard library and jsonschema only, so the GLUE harness (which must not
depend on the grader) writes its Gradescope files through it too.
"""
