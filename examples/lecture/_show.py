"""Printing helpers shared by the lecture scripts (not a topic of its own)."""
import numpy as np


def grid(a, fmt="{:g}"):
    """A 2-d array as aligned rows of numbers, e.g. '4  3  4\\n2  4  3\\n2  3  4'."""
    cells = [[fmt.format(float(v) + 0.0) for v in row] for row in np.asarray(a)]   # + 0.0: no "-0"
    width = max(len(c) for row in cells for c in row)
    return "\n".join("  ".join(c.rjust(width) for c in row) for row in cells)


def show(title, a, fmt="{:g}"):
    """Print a title and a 2-d array under it, indented."""
    print(title)
    print("    " + grid(a, fmt).replace("\n", "\n    "))
