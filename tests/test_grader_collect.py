"""`python -m grader collect --zip`: LMS downloads through nbgrader's zip_collect."""

import os
import zipfile

import nbformat
import pytest
from nbgrader.api import Gradebook

from grader import course, submission
from grader.__main__ import main

ASSIGNMENT = "attention"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    root = tmp_path_factory.mktemp("collect")
    path = course.setup(str(root / "course"), assignments=[ASSIGNMENT])
    release_dir = course.release(path, ASSIGNMENT)
    with open(os.path.join(release_dir, "attention.ipynb")) as f:
        return root, path, f.read()


def make_zip(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return str(path)


def submitted(path, student):
    with open(os.path.join(path, "submitted", student, ASSIGNMENT, "attention.ipynb")) as f:
        return f.read()


def with_marker(notebook_text, marker):
    nb = nbformat.reads(notebook_text, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell(marker))
    return nbformat.writes(nb)


def test_canvas_download_is_collected_and_bad_names_are_reported(released, capsys):
    root, path, release_text = released
    archive = make_zip(root / "submissions.zip", {
        "doejane_12345_678901_attention.ipynb": with_marker(release_text, "jane v1"),
        # Canvas marks late work and numbers re-uploads: still smithbob's attention.ipynb.
        "smithbob_LATE_222_333_attention-1.ipynb": with_marker(release_text, "bob"),
        "attention (1).ipynb": release_text,                # no student in the name
        "leeann_444_555_homework.ipynb": release_text,      # not a released notebook
    })
    main(["collect", path, ASSIGNMENT, "--zip", archive])
    out, err = capsys.readouterr()
    assert out.split() == ["doejane", "smithbob"]
    assert "attention (1).ipynb" in err and "homework.ipynb" in err
    assert "jane v1" in submitted(path, "doejane") and "bob" in submitted(path, "smithbob")
    assert not os.path.exists(os.path.join(path, "submitted", "leeann"))
    with Gradebook(course.db_url(path)) as gb:
        assert {"doejane", "smithbob"} <= {s.id for s in gb.students}
    # The download is kept where nbgrader zip_collect expects downloads.
    runs = os.listdir(os.path.join(path, "downloaded"))
    assert any(os.path.isfile(os.path.join(path, "downloaded", r, ASSIGNMENT, "archive", "submissions.zip"))
               for r in runs)


def test_a_folder_of_downloads_replaces_only_the_students_in_it(released, capsys):
    root, path, release_text = released
    folder = root / "downloads"
    folder.mkdir()
    make_zip(folder / "section1.zip", {"doejane_12345_678902_attention-2.ipynb": with_marker(release_text, "jane v2")})
    make_zip(folder / "section2.zip", {"kimyu_777_888_attention.ipynb": with_marker(release_text, "yu")})
    results = {student: os.path.join(path, "autograded", student, ASSIGNMENT, submission.RESULT_FILE)
               for student in ("doejane", "smithbob")}
    for result in results.values():  # as if both had been graded
        os.makedirs(os.path.dirname(result))
        open(result, "w").write("{}")
    main(["collect", path, ASSIGNMENT, "--zip", str(folder)])
    assert capsys.readouterr().out.split() == ["doejane", "kimyu"]
    # doejane's new notebook is graded again by the next autograde; smithbob's result stays.
    assert not os.path.exists(results["doejane"]) and os.path.exists(results["smithbob"])
    assert "jane v2" in submitted(path, "doejane") and "jane v1" not in submitted(path, "doejane")
    assert "yu" in submitted(path, "kimyu")
    assert "bob" in submitted(path, "smithbob")  # not in this download: kept
    # The same download again: collected again, nothing changed, so nothing to grade again.
    open(results["doejane"], "w").write("{}")
    main(["collect", path, ASSIGNMENT, "--zip", str(folder)])
    assert capsys.readouterr().out.split() == ["doejane", "kimyu"]
    assert os.path.exists(results["doejane"]) and "jane v2" in submitted(path, "doejane")


def test_custom_pattern(released, capsys):
    root, path, release_text = released
    # Moodle's "Download all submissions": <Full Name>_<participant id>_assignsubmission_file_<name>
    archive = make_zip(root / "moodle.zip", {
        "Ada Lovelace_4242_assignsubmission_file_attention.ipynb": with_marker(release_text, "ada")})
    pattern = r"(?:.*/)?[^/]+_(?P<student_id>\d+)_assignsubmission_file_(?P<file_id>[^/]+)"  # as in the README
    main(["collect", path, ASSIGNMENT, "--zip", archive, "--pattern", pattern])
    assert capsys.readouterr().out.split() == ["4242"]
    assert "ada" in submitted(path, "4242")


def snapshot(path):
    return course.submitted_files(path, ASSIGNMENT)


@pytest.mark.parametrize("name, content, message", [
    ("notes.zip", b"these are not the notebooks you are looking for", "is not a zip archive"),
    ("empty.zip", None, "holds no notebooks"),
])
def test_bad_archives_are_refused_and_nothing_is_lost(released, capsys, name, content, message):
    root, path, _ = released
    archive = root / name
    if content is None:
        make_zip(archive, {"readme.txt": "nothing here"})
    else:
        archive.write_bytes(content)
    before = snapshot(path)
    with pytest.raises(SystemExit) as exit:
        main(["collect", path, ASSIGNMENT, "--zip", str(archive)])
    assert message in str(exit.value) and name in str(exit.value)
    assert snapshot(path) == before


def test_a_download_where_no_name_matches_is_an_error(released):
    root, path, release_text = released
    archive = make_zip(root / "unnamed.zip", {"attention.ipynb": release_text})
    before = snapshot(path)
    with pytest.raises(SystemExit) as exit:
        main(["collect", path, ASSIGNMENT, "--zip", archive])
    assert "matched the file name pattern" in str(exit.value)
    assert snapshot(path) == before


def test_missing_source_and_ambiguous_arguments(released, tmp_path):
    _, path, _ = released
    with pytest.raises(SystemExit) as exit:
        main(["collect", path, ASSIGNMENT, "--zip", str(tmp_path / "nowhere.zip")])
    assert "does not exist" in str(exit.value)
    with pytest.raises(SystemExit) as exit:
        main(["collect", path, ASSIGNMENT, "--zip", str(tmp_path)])
    assert "holds no .zip files" in str(exit.value)
    with pytest.raises(SystemExit):
        main(["collect", path, ASSIGNMENT])


def test_unsafe_student_and_file_ids_are_skipped_with_a_warning(released, capsys):
    root, path, release_text = released
    archive = make_zip(root / "hostile.zip", {
        ".._31_41_attention.ipynb": with_marker(release_text, "escape"),      # student ".."
        "bell\x07name_32_42_attention.ipynb": with_marker(release_text, "bell"),  # a control character
        "okstudent_33_43_attention.ipynb": with_marker(release_text, "ok"),
    })
    main(["collect", path, ASSIGNMENT, "--zip", archive])
    out, err = capsys.readouterr()
    assert out.split() == ["okstudent"]
    assert "unsafe student_id '..' (empty or starts with a dot)" in err and ".._31_41_attention.ipynb" in err
    assert "holds a control character" in err and "bell\\x07name" in err
    assert not os.path.exists(os.path.join(path, ASSIGNMENT + ".ipynb"))  # submitted/../attention/...
    assert not os.path.exists(os.path.join(path, ASSIGNMENT))
    assert "bell\x07name" not in os.listdir(os.path.join(path, "submitted"))
    with Gradebook(course.db_url(path)) as gb:
        assert not {"..", "bell\x07name"} & {s.id for s in gb.students}
