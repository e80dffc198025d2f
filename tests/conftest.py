import os

# Quiet TensorFlow C++ logs in tests; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
