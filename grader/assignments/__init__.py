"""What the grader knows about each assignment: references and known bugs per case."""

from grader.assignments import attention

# case id -> Case (reference outputs and known bugs), across all assignments.
CASES = {**attention.CASES}
