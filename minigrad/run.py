"""Run a PyTorch script on minigrad, unchanged: `python -m minigrad.run script.py [args ...]`.

Installs the torch alias (minigrad.compat.install_torch_alias), then runs the script as
`__main__` with sys.argv = [script.py, args ...] and the script's directory first on
sys.path, as `python script.py args` would. `python -m minigrad.run -m package.module
[args ...]` runs a module the same way.
"""
import os
import runpy
import sys

USAGE = "usage: python -m minigrad.run script.py [args ...]  |  python -m minigrad.run -m module [args ...]"


def main(argv=None):
    """Entry point: argv (default sys.argv[1:]) is the script (or -m module) and its arguments.
    Returns the process exit status for a usage error; otherwise the script's own exit applies."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    from .compat import install_torch_alias
    if argv[0] == "-m":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        install_torch_alias()
        sys.argv = argv[1:]
        sys.path.insert(0, os.getcwd())
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    script = argv[0]
    if not os.path.isfile(script):
        print(f"minigrad.run: cannot open {script!r}: no such file", file=sys.stderr)
        return 2
    install_torch_alias()
    sys.argv = argv
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
