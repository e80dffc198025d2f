"""JupyterHub's way: release, fetch, submit and collect through nbgrader's exchange with
nbgrader's own commands, grade with the kit, and return the kit's feedback to each student
with nbgrader's release_feedback / fetch_feedback."""

import glob
import os
import subprocess
import sys

import nbformat
import pytest

from course_demo.sample_students import CAUSAL_OFF_BY_ONE, HEADS, SDPA, student_notebook
from grader import course
from grader.__main__ import main
from grader.course import late

# Long (`make test-long`, not `make test`): nbgrader's exchange round trip for a
# class, graded twice.
pytestmark = pytest.mark.long

ASSIGNMENT = "attention"
COURSE_ID = "lm-course"
STUDENTS = ("alice", "bob")


def nbgrader(cwd, env, *args):
    """One of nbgrader's commands, as a student or the instructor runs it in `cwd`."""
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    root = tmp_path_factory.mktemp("exchange")
    exchange = root / "exchange"
    exchange.mkdir()
    # No one's own Jupyter config: each side reads only the nbgrader_config.py in its folder,
    # the one a JupyterHub deployment puts in each server's config path.
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "jupyter"), "JUPYTER_DATA_DIR": str(root / "data"),
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    path = course.setup(str(root / "course"), course_id=COURSE_ID, assignments=[ASSIGNMENT])
    with open(os.path.join(path, "nbgrader_config.py"), "a") as f:
        f.write(f"c.Exchange.root = {str(exchange)!r}\n")
    main(["generate", path, ASSIGNMENT])
    nbgrader(path, env, "release_assignment", ASSIGNMENT)

    homes = {}
    for student in STUDENTS:
        home = homes[student] = root / student
        home.mkdir()
        # One OS user plays every student: the student id comes from the config, as
        # JupyterHub's user name would.
        (home / "nbgrader_config.py").write_text(
            f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
            f"c.CourseDirectory.student_id = {student!r}\nc.Exchange.root = {str(exchange)!r}\n"
            f"c.Exchange.cache = {str(home / '.nbgrader_cache')!r}\n")
        nbgrader(home, env, "fetch_assignment", ASSIGNMENT)
    fetched = nbformat.read(str(homes["alice"] / ASSIGNMENT / "attention.ipynb"), as_version=4)
    # alice's causal mask is off by one (a catalogued bug) and her layer is not written; bob's work is right.
    nbformat.write(student_notebook(fetched, {"sdpa": SDPA, "causal": CAUSAL_OFF_BY_ONE, "heads": HEADS}),
                   str(homes["alice"] / ASSIGNMENT / "attention.ipynb"))
    nbformat.write(nbformat.read(os.path.join(path, "source", ASSIGNMENT, "attention.ipynb"), as_version=4),
                   str(homes["bob"] / ASSIGNMENT / "attention.ipynb"))
    for student in STUDENTS:
        nbgrader(homes[student], env, "submit", ASSIGNMENT)

    nbgrader(path, env, "collect", ASSIGNMENT)
    main(["autograde", path, ASSIGNMENT, "--workers", "2"])
    main(["feedback", path, ASSIGNMENT])
    nbgrader(path, env, "release_feedback", ASSIGNMENT)
    for student in STUDENTS:
        nbgrader(homes[student], env, "fetch_feedback", ASSIGNMENT)
    return path, homes, env


def fetched_feedback(home):
    """What fetch_feedback put in the student's folder: attention/feedback/<submission time>/*.html."""
    files = glob.glob(str(home / ASSIGNMENT / "feedback" / "*" / "*.html"))
    assert [os.path.basename(f) for f in files] == ["attention.html"], files
    with open(files[0]) as f:
        return f.read()


def test_each_student_fetches_the_kits_feedback_on_their_own_work(round_trip):
    _, homes, _ = round_trip
    alice, bob = fetched_feedback(homes["alice"]), fetched_feedback(homes["bob"])
    # Only the kit writes these: its verdict on the secret inputs and the named known bug.
    assert "attention: 7 / 12" in alice and "off by one: a query cannot see its own position" in alice
    assert "attention: 12 / 12" in bob and "off by one" not in bob


def test_the_exchange_submission_time_is_the_graded_submission_time(round_trip):
    path, homes, _ = round_trip
    for student, home in homes.items():
        submitted_at = late.read_timestamp(os.path.join(path, "submitted", student, ASSIGNMENT))
        cached = glob.glob(str(home / ".nbgrader_cache" / COURSE_ID / f"{student}+{ASSIGNMENT}+*"))
        assert submitted_at == late.read_timestamp(cached[0])
        with course.gradebook(path) as gb:
            assert gb.find_submission(ASSIGNMENT, student).timestamp == submitted_at
        # the submission's folder name in the student's feedback is its exchange time
        assert os.listdir(home / ASSIGNMENT / "feedback") == [cached[0].split("+")[2]]


def test_a_later_submission_collected_with_update_is_graded_again(round_trip):
    path, homes, env = round_trip
    # alice fixes her mask and submits again; nbgrader collect --update takes the later submission.
    nbformat.write(nbformat.read(os.path.join(path, "source", ASSIGNMENT, "attention.ipynb"), as_version=4),
                   str(homes["alice"] / ASSIGNMENT / "attention.ipynb"))
    nbgrader(homes["alice"], env, "submit", ASSIGNMENT)
    nbgrader(path, env, "collect", "--update", ASSIGNMENT)
    run = course.autograde(path, ASSIGNMENT, workers=2, progress=False)
    assert {r["student"]: r["score"] for r in run} == {"alice": 12, "bob": 12}
    main(["feedback", path, ASSIGNMENT])
    nbgrader(path, env, "release_feedback", ASSIGNMENT)
    nbgrader(homes["alice"], env, "fetch_feedback", ASSIGNMENT)
    # one folder per submission: the first keeps its feedback, the second gets the new one
    folders = sorted(os.listdir(homes["alice"] / ASSIGNMENT / "feedback"))
    assert len(folders) == 2
    with open(homes["alice"] / ASSIGNMENT / "feedback" / folders[1] / "attention.html") as f:
        assert "attention: 12 / 12" in f.read()
