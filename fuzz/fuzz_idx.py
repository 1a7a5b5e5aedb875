"""Fuzz target: read_idx on arbitrary bytes, raw and gzip (a coverage-guided atheris target).

    python fuzz/fuzz_idx.py -max_total_time=60 fuzz/corpus/idx

Each input is written to a scratch file and read. read_idx must return an array, or raise
ValueError whose message starts with "read_idx(<path>)"; the data it returns is bounded
(at most 64 × the input's size + 1 MiB for gzip), anything else is a crash. The seeds are
small IDX files, raw and gzip-compressed, of every type code (fuzz/make_corpus.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402

import minigrad._safeio  # noqa: E402
import minigrad.data.idx  # noqa: E402
from minigrad.data import read_idx  # noqa: E402
from minigrad.data.idx import GZIP_RATIO, GZIP_SLACK  # noqa: E402

_harness.instrument([minigrad.data.idx, minigrad._safeio])

PATH = os.path.join(_harness.scratch_dir(), "input")


def test_one_input(data):
    _harness.write(PATH, data)
    try:
        a = read_idx(PATH)
    except Exception as e:
        _harness.check_error(e, f"read_idx({PATH})", PATH)
        return
    if a.nbytes > GZIP_RATIO * len(data) + GZIP_SLACK:
        raise AssertionError(f"read_idx returned {a.nbytes} bytes from a {len(data)}-byte file")


if __name__ == "__main__":
    _harness.main(test_one_input)
