"""Fuzz target: mg.load on arbitrary bytes (a coverage-guided atheris target).

    python fuzz/fuzz_load.py -max_total_time=60 fuzz/corpus/load      # atheris/libFuzzer flags

Each input is written to a scratch file and loaded. With atheris, a custom mutator
re-packs most mutated archives with valid CRCs (see mutate), so that mutations reach the
.npy header and metadata parsers instead of stopping at zipfile's checksum. mg.load must return, or raise
ValueError whose message starts with "mg.load(<path>)"; anything else (another exception,
a signal, a hang beyond -timeout, memory beyond -rss_limit_mb) is a crash. The seeds in
fuzz/corpus/load are small checkpoints written by mg.save (fuzz/make_corpus.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402

import io  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import zipfile  # noqa: E402

import numpy as np  # noqa: E402

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


def mutate(data, max_size, seed):
    """Mostly structure-aware: unpack the archive, mutate one entry (the metadata's JSON
    as text), pack it again with correct CRCs, so mutations get past zipfile's checks to
    the .npy and metadata parsers; otherwise (or for a third of the inputs) mutate bytes."""
    rng = random.Random(seed)
    if rng.random() < 0.33:
        return _harness.atheris.Mutate(data, max_size)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            entries = [(i.filename, z.read(i)) for i in z.infolist()]
    except Exception:                 # not an archive that zipfile reads: mutate bytes
        return _harness.atheris.Mutate(data, max_size)
    if not entries:
        return _harness.atheris.Mutate(data, max_size)
    k = rng.randrange(len(entries))
    name, body = entries[k]
    try:
        if name == "__minigrad__.npy" and rng.random() < 0.7:
            text = str(np.load(io.BytesIO(body), allow_pickle=False)[()])
            text = _harness.atheris.Mutate(text.encode(), 2 * len(text) + 64).decode("utf-8", "replace")
            out = io.BytesIO()
            np.save(out, np.array(text))
            body = out.getvalue()
        else:
            body = _harness.atheris.Mutate(body, 2 * len(body) + 64)
    except Exception:
        body = _harness.atheris.Mutate(body, 2 * len(body) + 64)
    entries[k] = (name, body)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, b in entries:
            z.writestr(n, b)
    packed = out.getvalue()
    return packed if len(packed) <= max_size else _harness.atheris.Mutate(data, max_size)


if __name__ == "__main__":
    _harness.main(test_one_input, custom_mutator=mutate if _harness.atheris else None)
