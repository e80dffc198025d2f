"""A graded submission (`grader_result.json`) as Gradescope's results.json (`lms.gradescope` builds it)."""

from lms.gradescope import results_json

SECRET_INPUTS_NOTE = ("Each test ran your functions on secret inputs, drawn afresh for this submission; "
                      "its result shows {when}. Run the notebook's local checks for instant feedback.")
SHOWN = {"visible": "now", "after_due_date": "after the due date",
         "after_published": "when your instructor publishes the grades", "hidden": "to course staff only"}


def from_grader_result(result, *, secret_visibility="after_published", leaderboard=None, execution_time=None):
    """results.json for one student's graded submission (a `grader_result.json`).

    One test per graded cell, named "<notebook>: <grade id>", with its verdict's messages
    (known bugs named). Every graded cell runs on secret inputs, so its test has
    `secret_visibility` (Gradescope's hidden tests: after_published by default); the
    top-level output, always visible, says what happened to the notebook (cells restored,
    time limits) and when the tests show.
    """
    tests, notes = [], []
    for notebook, verdict in result["notebooks"].items():
        happened = verdict["problems"] + verdict["events"]
        notes += [f"{notebook}: {line}" for line in happened]
        for cell in verdict["cells"]:
            lines = [case["message"] for case in cell["cases"]] or ["not graded: " + "; ".join(happened)]
            passed = bool(cell["cases"]) and all(case["passed"] for case in cell["cases"])
            tests.append({"name": f"{notebook}: {cell['grade_id']}", "score": cell["score"],
                          "max_score": cell["points"], "status": "passed" if passed else "failed",
                          "output": "\n".join(lines), "visibility": secret_visibility})
    output = notes + [SECRET_INPUTS_NOTE.format(when=SHOWN[secret_visibility])]
    return results_json(tests, score=result["score"], output="\n".join(output),
                        leaderboard=leaderboard, execution_time=execution_time)
