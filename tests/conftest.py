import os

# Quiet TensorFlow C++ logs in tests; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Parallel test processes (pytest-xdist workers gw0, gw1, ...) each get their
# own sandbox uid range, so one's process limit never counts the other's kernels.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
os.environ["GRADER_SANDBOX_UID_BASE"] = str(61000 + 1000 * int(_worker.removeprefix("gw")))
