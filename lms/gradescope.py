"""Gradescope's results.json: the one function that builds it (`results_json`), and its rules.

The fields are those of Gradescope's autograder specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/#output-format): a top-level
`score`, `execution_time` (seconds), `output`, `visibility` and `stdout_visibility`; `tests`,
each with `score`, `max_score`, `status`, `name`, `output` and `visibility`; and `leaderboard`
entries `{name, value, order?}`. `SCHEMA` states them as JSON Schema; `problems` adds what a
schema cannot say (a test's score at most its max_score). Every file the kit writes for
Gradescope (the autograder's, `python -m grader export`'s, the GLUE harness's) comes from
`results_json`, which refuses to build one that breaks these rules. `grader.gradescope.results`
turns a graded submission into one.
"""

import math

import jsonschema

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
STATUSES = ("passed", "failed")
ORDERS = ("asc", "desc")

_NUMBER = {"type": "number"}
_TEXT = {"type": "string"}

SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["score", "output", "visibility", "stdout_visibility", "tests"],
    "additionalProperties": False,
    "properties": {
        "score": _NUMBER,
        "execution_time": {"type": "number", "minimum": 0},
        "output": _TEXT,
        "visibility": {"enum": list(VISIBILITIES)},
        "stdout_visibility": {"enum": list(VISIBILITIES)},
        "tests": {"type": "array", "items": {
            "type": "object",
            "required": ["name", "score", "max_score", "status", "output", "visibility"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string", "minLength": 1}, "score": _NUMBER,
                           "max_score": {"type": "number", "minimum": 0},
                           "status": {"enum": list(STATUSES)}, "output": _TEXT,
                           "visibility": {"enum": list(VISIBILITIES)}}}},
        "leaderboard": {"type": "array", "items": {
            "type": "object",
            "required": ["name", "value"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string", "minLength": 1},
                           "value": {"type": ["number", "string"]},
                           "order": {"enum": list(ORDERS)}}}},
    },
}

_VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def problems(results):
    """Every way `results` breaks Gradescope's rules, as messages (empty when it keeps them)."""
    found = [f"{'/'.join(map(str, error.absolute_path)) or 'results'}: {error.message}"
             for error in _VALIDATOR.iter_errors(results)]
    if not isinstance(results, dict):
        return found
    numbers = [("score", results.get("score")), ("execution_time", results.get("execution_time"))]
    for index, test in enumerate(results.get("tests", [])):
        if not isinstance(test, dict):
            continue  # already reported by the schema
        numbers += [(f"tests/{index}/{key}", test.get(key)) for key in ("score", "max_score")]
        try:
            if test["score"] > test["max_score"]:
                found.append(f"tests/{index}: score {test['score']} is above max_score {test['max_score']}")
        except (KeyError, TypeError):
            pass  # already reported by the schema
    numbers += [(f"leaderboard/{index}/value", entry.get("value"))
                for index, entry in enumerate(results.get("leaderboard", [])) if isinstance(entry, dict)]
    # JSON has no NaN or infinity (Python writes them, Gradescope cannot read them).
    found += [f"{where}: {value} is not a finite number" for where, value in numbers
              if isinstance(value, float) and not math.isfinite(value)]
    return found


def results_json(tests, *, score=None, output="", visibility="visible", stdout_visibility="hidden",
                 execution_time=None, leaderboard=None):
    """A results.json document, checked against Gradescope's rules (ValueError naming each break).

    `tests`: [{"name", "score", "max_score", "output"?, "visibility"?, "status"?}]; a test
    without a status has passed when it earned its max_score. `score`: the submission's
    total (default: the tests' sum). `leaderboard`: [{"name", "value", "order"?}].
    """
    results = {
        "score": sum(test["score"] for test in tests) if score is None else score,
        "output": output,
        "visibility": visibility,
        "stdout_visibility": stdout_visibility,
        "tests": [{"name": test["name"], "score": test["score"], "max_score": test["max_score"],
                   "status": test.get("status") or ("passed" if test["score"] >= test["max_score"] else "failed"),
                   "output": test.get("output", ""), "visibility": test.get("visibility", "visible")}
                  for test in tests],
    }
    if execution_time is not None:
        results["execution_time"] = execution_time
    if leaderboard is not None:
        results["leaderboard"] = list(leaderboard)
    broken = problems(results)
    if broken:
        raise ValueError("not a valid Gradescope results.json:\n  " + "\n  ".join(broken))
    return results
