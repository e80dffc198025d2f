"""The public and private halves of each dev set, and the daily submission limit, as Kaggle runs them.

Every dev example goes to the private split when the first byte of the
sha256 of its text (the texts joined by a tab, UTF-8) is below
`PRIVATE_FRACTION * 256`, and to the public split otherwise. The split is a
function of the example alone: fixed, the same on every machine and for
every submission, with no file to keep in step with the data, and it never
moves when rows are added or removed. About half of each dev set is private.

The leaderboard shows public scores only; the private ones are stored with
every run and decide the final ranking once staff reveal them
(`python -m benchmarks reveal`, or `report --reveal`). Students tune against
the public half, so the private half stays an honest estimate.
"""

import hashlib

import numpy as np

PRIVATE_FRACTION = 0.5


def example_digest(texts):
    return hashlib.sha256("\t".join(texts).encode("utf-8")).digest()


def private_mask(examples):
    """Boolean array over the examples (an `Examples`' `texts`): True for the private split."""
    threshold = int(PRIVATE_FRACTION * 256)
    return np.array([example_digest(texts)[0] < threshold for texts in examples], bool)


class DailyLimitReached(RuntimeError):
    """A student has used today's scored submissions; the message says when the next one is allowed."""
