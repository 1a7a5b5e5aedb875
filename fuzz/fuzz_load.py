"""Fuzz target: mg.load on arbitrary bytes (a coverage-guided atheris target).

    python fuzz/fuzz_load.py -max_total_time=60 fuzz/corpus/load      # atheris/libFuzzer flags

Each input is written to a scratch file and loaded. mg.load must return, or raise
ValueError whose message starts with "mg.load(<path>)"; anything else (another exception,
a signal, a hang beyond -timeout, memory beyond -rss_limit_mb) is a crash. The seeds in
fuzz/corpus/load are small checkpoints written by mg.save (fuzz/make_corpus.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402

import json  # noqa: E402
import zipfile  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad._safeio  # noqa: E402
import minigrad.serialization  # noqa: E402

_harness.instrument([minigrad.serialization, minigrad._safeio, zipfile, json, json.decoder])

PATH = os.path.join(_harness.scratch_dir(), "input")


def test_one_input(data):
    _harness.write(PATH, data)
    try:
        mg.load(PATH)
    except Exception as e:
        _harness.check_error(e, f"mg.load({PATH})", PATH)


if __name__ == "__main__":
    _harness.main(test_one_input)
