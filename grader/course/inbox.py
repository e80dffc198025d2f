"""Collecting submissions into submitted/: from a folder per student, or from LMS zip downloads."""

import calendar
import datetime
import functools
import hashlib
import os
import shutil
import struct
import unicodedata
import zipfile

from nbgrader.api import Gradebook
from nbgrader.plugins import ExtractorPlugin, FileNameCollectorPlugin
from nbgrader.utils import parse_utc

from grader import submission
from grader.course import late
from grader.course.layout import gradebook, nbgrader

def collect(course, assignment, inbox):
    """Copy `inbox/<student>/*.ipynb` into submitted/<student>/<assignment>/ and register students.

    Each submission keeps its time as nbgrader's `timestamp.txt`: the one in the student's inbox
    folder (e.g. copied from nbgrader's exchange), else the newest modification time of its files.
    """
    students = []
    before = submitted_files(course, assignment)
    with gradebook(course) as gb:
        for student in sorted(os.listdir(inbox)):
            source = os.path.join(inbox, student)
            if not os.path.isdir(source):
                continue
            target = os.path.join(course, "submitted", student, assignment)
            shutil.copytree(source, target, dirs_exist_ok=True)
            submitted = any(name.endswith(".ipynb") for name in os.listdir(source))
            if submitted and not os.path.isfile(os.path.join(source, late.TIMESTAMP_FILE)):
                late.write_timestamp(target, newest_file_time(source))  # no notebook: nothing was submitted
            gb.update_or_create_student(student)
            students.append(student)
    grade_again(course, assignment, changed_students(course, assignment, before))
    return students


def newest_file_time(folder):
    """The latest modification time of the files under `folder`, as an aware UTC datetime."""
    times = [os.path.getmtime(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names]
    return datetime.datetime.fromtimestamp(max(times, default=os.path.getmtime(folder)), datetime.timezone.utc)


# Canvas "Download Submissions" names each file
# <sortable name, lower case, no punctuation>_[LATE_]<user id>_<submission id>_<uploaded name>,
# and a re-upload as <name>-1.ipynb: e.g. doejane_LATE_12345_678901_attention-1.ipynb is
# doejane's attention.ipynb. nbgrader matches the pattern against the extracted file's
# whole path, hence the leading (?:.*/)?. The `late` group keeps Canvas's marker, which
# SafeNameCollector checks against the file's time.
CANVAS_PATTERN = (r"(?:.*/)?(?P<student_id>[^/_]+)_(?:(?P<late>LATE)_)?\d+_\d+_"
                  r"(?P<file_id>[^/]+?)(?:-\d+)?\.ipynb$")


def unsafe_name(name):
    """Why `name` (a student or file id from an LMS archive) cannot name a folder or file, or None."""
    if not name or name.startswith("."):
        return "empty or starts with a dot"
    if "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        return "holds a path separator"
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        return "holds a control character"
    if len(name.encode()) > 200:
        return "longer than 200 bytes"
    return None


def archive_time(info):
    """When a zip member was last modified, in seconds since the epoch: its UTC extended
    timestamp (zip extra field 0x5455) when present, else its DOS time read as UTC."""
    extra = info.extra
    while len(extra) >= 4:
        tag, size = struct.unpack("<HH", extra[:4])
        if tag == 0x5455 and size >= 5 and extra[4] & 1:  # flag bit 0: the modification time follows
            return struct.unpack("<i", extra[5:9])[0]
        extra = extra[4 + size:]
    return calendar.timegm(info.date_time)


class TimedExtractor(ExtractorPlugin):
    """nbgrader's extractor, but each extracted file keeps its time from the archive (nbgrader's
    unzip gives it the extraction time), so the collector can record when it was submitted."""

    def extract(self, archive_path, extracted_path):
        super().extract(archive_path, extracted_path)
        for root, _, names in os.walk(archive_path):
            for name in names:
                if not zipfile.is_zipfile(os.path.join(root, name)):
                    continue
                # where ExtractorPlugin unzipped it: a folder named after the archive
                folder = os.path.normpath(os.path.join(extracted_path, os.path.relpath(root, archive_path),
                                                       os.path.splitext(name)[0]))
                with zipfile.ZipFile(os.path.join(root, name)) as archive:
                    for info in archive.infolist():
                        target = os.path.normpath(os.path.join(folder, info.filename))
                        if target.startswith(folder + os.sep) and os.path.isfile(target):
                            os.utime(target, (archive_time(info),) * 2)


class SafeNameCollector(FileNameCollectorPlugin):
    """nbgrader's file name collector that skips, with a warning naming the file,
    any file whose student or file id could escape submitted/<student>/ (`..`,
    separators) or hide in a listing (control characters).

    Each file's time is the pattern's `timestamp` group when it has one, else the
    file's time in the archive; nbgrader's zip_collect writes it to timestamp.txt.
    A file the LMS marks late (the pattern's `late` group) whose time is not after
    the assignment's due date gets a warning: its lateness cannot be measured.
    """

    def collect(self, submitted_file):
        info = super().collect(submitted_file)
        for key in ("student_id", "file_id"):
            why = info and unsafe_name(info.get(key) or "")
            if why:
                self.log.warning(f"Skipped submission with an unsafe {key} {info[key]!r} ({why}): "
                                 f"{submitted_file!r}")
                return None
        if info and not info.get("timestamp"):
            info["timestamp"] = datetime.datetime.fromtimestamp(os.path.getmtime(submitted_file),
                                                                datetime.timezone.utc).isoformat()
        if info and info.get("late"):
            due = self.due_date
            if due is None or parse_utc(info["timestamp"]) <= due:
                self.log.warning(
                    f"{LATE_WARNING} by the LMS, but its time {info['timestamp']} is not after the due "
                    f"date ({due or 'none in the gradebook: nbgrader db assignment add ASSIGNMENT --duedate=...'}),"
                    f" so no late penalty applies unless you write the submission time to "
                    f"submitted/{info['student_id']}/<assignment>/timestamp.txt: {submitted_file!r}")
        return info

    @functools.cached_property
    def due_date(self):
        """The assignment's due date in the gradebook (naive UTC), or None."""
        with Gradebook(self.parent.coursedir.db_url) as gb:
            return gb.find_assignment(self.parent.coursedir.assignment_id).duedate


LATE_WARNING = "Marked late"


class CollectError(ValueError):
    """An LMS download that cannot be collected; nothing was changed."""


def lms_archives(source):
    """The zip files to collect: `source` itself, or every *.zip in the folder `source`."""
    if os.path.isdir(source):
        archives = sorted(os.path.join(source, n) for n in os.listdir(source) if n.endswith(".zip"))
        if not archives:
            raise CollectError(f"{source} holds no .zip files; put the LMS downloads there")
    elif os.path.isfile(source):
        archives = [source]
    else:
        raise CollectError(f"{source} does not exist")
    for archive in archives:
        if not archive.endswith(".zip") or not zipfile.is_zipfile(archive):
            raise CollectError(f"{archive} is not a zip archive; download the submissions "
                               "from the LMS again (one .zip holding the notebooks)")
        with zipfile.ZipFile(archive) as zf:
            if not any(n.endswith((".ipynb", ".zip")) for n in zf.namelist()):
                raise CollectError(f"{archive} holds no notebooks (.ipynb); is it the download "
                                   "of this assignment's submissions?")
    return archives


def collect_zip(course, assignment, source, pattern=CANVAS_PATTERN):
    """Collect LMS zip downloads with nbgrader's `zip_collect`; returns (students, warnings).

    Every archive is checked before anything is copied. The archives are kept
    under downloaded/<run>/<assignment>/archive/, one folder per run, so earlier
    downloads stay. A student found in the download gets their submission
    replaced by it (an LMS download holds each student's latest); other
    students' submissions are not touched. Files whose name does not match
    `pattern` or no released notebook are skipped with a warning.
    """
    course = os.path.abspath(course)
    archives = lms_archives(source)
    run = "downloaded/" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
    archive_dir = os.path.join(course, run, assignment, "archive")
    os.makedirs(archive_dir)
    for archive in archives:
        shutil.copy(archive, archive_dir)
    before = submitted_files(course, assignment)
    # --strict skips notebooks whose name is not a released one instead of
    # replacing a student's valid submission with them; --force lets a newer
    # download replace a student's earlier one.
    result = nbgrader(course, "zip_collect", assignment, "--strict", "--force",
                      f"--ZipCollectApp.downloaded_directory={run}",
                      f"--ZipCollectApp.collector_plugin={SafeNameCollector.__module__}.SafeNameCollector",
                      f"--ZipCollectApp.extractor_plugin={TimedExtractor.__module__}.TimedExtractor",
                      f"--SafeNameCollector.named_regexp={pattern}")
    log = result.stderr.splitlines()
    # nbgrader logs "Copying to: submitted/<student>/<assignment>/<file>" per collected file.
    submitted = os.path.join(course, "submitted") + os.sep
    copied = [line.split("Copying to:", 1)[1].strip() for line in log if "Copying to:" in line]
    students = sorted({path[len(submitted):].split(os.sep)[0] for path in copied
                       if path.startswith(submitted)})
    with gradebook(course) as gb:
        for student in students:
            gb.update_or_create_student(student)
    grade_again(course, assignment, changed_students(course, assignment, before))
    warnings_seen = [line.split("WARNING]", 1)[1].strip() for line in log
                     if "WARNING]" in line and ("Skipped" in line or LATE_WARNING in line)]
    return students, warnings_seen


def changed_students(course, assignment, before):
    """Students with a file added or changed under submitted/ since the snapshot `before`."""
    changed = submitted_files(course, assignment).items() - before.items()
    return sorted({student for (student, _), _ in changed})


def grade_again(course, assignment, students):
    """A new submission makes the student's result stale: remove it so autograde grades them again."""
    for student in students:
        stale = os.path.join(course, "autograded", student, assignment, submission.RESULT_FILE)
        if os.path.isfile(stale):
            os.remove(stale)


def submitted_files(course, assignment):
    """{(student, file): SHA-256 of its content} of everything under submitted/*/<assignment>/."""
    files = {}
    submitted = os.path.join(course, "submitted")
    for student in os.listdir(submitted) if os.path.isdir(submitted) else []:
        directory = os.path.join(submitted, student, assignment)
        for name in os.listdir(directory) if os.path.isdir(directory) else []:
            with open(os.path.join(directory, name), "rb") as f:
                files[(student, name)] = hashlib.file_digest(f, "sha256").hexdigest()
    return files


def submitted_students(course, assignment):
    """Students with a submitted/<student>/<assignment>/ folder, sorted."""
    submitted = os.path.join(course, "submitted")
    if not os.path.isdir(submitted):
        return []
    return [student for student in sorted(os.listdir(submitted))
            if os.path.isdir(os.path.join(submitted, student, assignment))]
