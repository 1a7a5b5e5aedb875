"""What the fuzz targets share: a scratch file to hand each input to the parser, the rule
every outcome must obey, and the driver (atheris when installed, else a fallback).

The rule: the parser returns normally or raises ValueError (content) / OSError (path)
whose message starts with the public function's name and names the path. Any other
exception propagates, and the fuzzer reports it as a crash (libFuzzer writes the input to
crash-<sha1>); so do a signal, a hang (-timeout=S) and memory beyond -rss_limit_mb.

The fallback driver, used when atheris cannot be imported (or with
MINIGRAD_FUZZ_FALLBACK=1), takes the same command line as libFuzzer for the flags CI uses
(-runs=N, -max_total_time=S, -seed=N, -max_len=N, -artifact_prefix=P, corpus directories;
others are ignored) and mutates the corpus
with bit flips, byte writes, insertions, deletions and splices; it has no coverage feedback.
"""
import atexit
import hashlib
import os
import random
import shutil
import sys
import tempfile
import time

try:
    if os.environ.get("MINIGRAD_FUZZ_FALLBACK") == "1":
        raise ImportError("MINIGRAD_FUZZ_FALLBACK=1")
    import atheris
except ImportError:
    atheris = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def instrument(modules):
    """Give atheris coverage feedback from every function of `modules` (and of the classes
    in them): minigrad's parsers and the standard library's zipfile/json/gzip, which atheris
    itself imported before any `instrument_imports` block could catch them. A no-op without
    atheris."""
    if atheris is None:
        return
    import inspect
    seen = set()
    for module in modules:
        for obj in vars(module).values():
            funcs = [obj] if inspect.isfunction(obj) else (
                [f for f in vars(obj).values() if inspect.isfunction(f)] if inspect.isclass(obj) else [])
            for f in funcs:
                if getattr(f, "__module__", None) == module.__name__ and f not in seen:
                    seen.add(f)
                    atheris.instrument_func(f)


def scratch_dir():
    """A private directory for the inputs: under $MINIGRAD_FUZZ_SCRATCH if set, else in RAM
    when /dev/shm exists. It is removed at exit, except after libFuzzer's own exit (atheris),
    which skips Python's atexit handlers: .ci/sanitize points it into its scratch copy."""
    base = os.environ.get("MINIGRAD_FUZZ_SCRATCH")
    if not base and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        base = "/dev/shm"
    path = tempfile.mkdtemp(prefix="minigrad-fuzz-", dir=base)
    atexit.register(shutil.rmtree, path, True)
    return path


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def check_error(e, fn, path):
    """Re-raise `e` unless it is the documented kind of error, worded as documented."""
    if not isinstance(e, (ValueError, OSError)):
        raise e
    if not str(e).startswith(fn) or path not in str(e):
        raise AssertionError(f"the error does not start with {fn!r} and name {path!r}: "
                             f"{type(e).__name__}: {e}") from e


# ---- the fallback driver -----------------------------------------------------------------------

def _flags(argv):
    flags, dirs = {}, []
    for a in argv[1:]:
        if a.startswith("-") and "=" in a:
            k, v = a[1:].split("=", 1)
            flags[k] = v
        elif not a.startswith("-"):
            dirs.append(a)
    return flags, dirs


def _mutate(rng, data, corpus, max_len):
    data = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        op = rng.randrange(6)
        i = rng.randrange(len(data) + 1)
        if op == 0 and data:                                  # flip a bit
            j = min(i, len(data) - 1)
            data[j] ^= 1 << rng.randrange(8)
        elif op == 1 and data:                                # an interesting byte
            j = min(i, len(data) - 1)
            data[j] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == 2:                                         # insert random bytes
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif op == 3 and data:                                # delete a run
            del data[i:i + rng.randrange(1, 17)]
        elif op == 4 and len(data) >= 4:                      # an extreme 32-bit integer
            j = rng.randrange(len(data) - 3)
            data[j:j + 4] = rng.choice((b"\xff\xff\xff\xff", b"\x00\x00\x00\x80", b"\x00\x00\x00\x00",
                                        b"\x7f\xff\xff\xff"))
        elif op == 5 and corpus:                              # splice with another input
            other = rng.choice(corpus)
            k = rng.randrange(len(other) + 1)
            data = data[:i] + other[k:]
    return bytes(data[:max_len])


def _fallback(argv, test_one_input):
    flags, dirs = _flags(argv)
    runs = int(flags.get("runs", -1))
    budget = float(flags.get("max_total_time", 0)) or None
    max_len = int(flags.get("max_len", 4096))
    rng = random.Random(int(flags.get("seed", 0)) or None)
    corpus = []
    for d in dirs:
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    corpus.append(f.read())
    corpus = corpus or [b""]
    start, n = time.monotonic(), 0
    print(f"fallback fuzzer (no atheris): {len(corpus)} corpus inputs, runs={runs}, "
          f"max_total_time={budget}", flush=True)
    while (runs < 0 or n < runs) and (budget is None or time.monotonic() - start < budget):
        data = corpus[n] if n < len(corpus) else _mutate(rng, rng.choice(corpus), corpus, max_len)
        try:
            test_one_input(data)
        except BaseException:
            name = flags.get("artifact_prefix", "") + "crash-" + hashlib.sha1(data).hexdigest()
            write(name, data)
            print(f"==fallback== crash after {n + 1} inputs; input written to {name}", flush=True)
            raise
        n += 1
    took = time.monotonic() - start
    print(f"Done {n} runs in {took:.0f} second(s) ({n / max(took, 1e-9):.0f} exec/s)", flush=True)


def main(test_one_input, argv=None, custom_mutator=None):
    """Fuzz `test_one_input` with the command line `argv` (libFuzzer's flags); with atheris,
    `custom_mutator(data, max_size, seed)` (if given) proposes the inputs."""
    argv = list(sys.argv if argv is None else argv)
    if atheris is None:
        _fallback(argv, test_one_input)
        return
    if custom_mutator is None:
        atheris.Setup(argv, test_one_input)
    else:
        atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
