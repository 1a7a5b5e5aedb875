# Index helpers shared by the convolution kernels (ext/conv_direct.pyx, ext/conv_im2col.pyx),
# included after the includer's `cimport`s.
#
# Notation (DESIGN.md): a tap (p, q) of output (i', j') reads input row
# ih = i'·S_h + p·D_h − P_top and column iw = j'·S_w + q·D_w − P_left. The bottom/right
# padding is never stored: the caller passes the output size OH×OW, and a tap that lands
# outside [0, H)×[0, W) reads a zero. So every kernel loops only over the outputs whose
# read lands inside, and neither stores nor multiplies the padding.
#
# For a tap at offset `off` (= p·d − pad) and stride s, output position o reads input
# position o·s + off. The outputs whose read lands inside [0, size) are
# [_first(off, s), _end(off, s, size, O)).

cdef inline Py_ssize_t _first(Py_ssize_t off, Py_ssize_t s) noexcept nogil:
    """Smallest o ≥ 0 with o·s + off ≥ 0."""
    if off >= 0:
        return 0
    return (-off + s - 1) // s


cdef inline Py_ssize_t _end(Py_ssize_t off, Py_ssize_t s, Py_ssize_t size,
                            Py_ssize_t O) noexcept nogil:
    """One past the largest o < O with o·s + off < size (at least _first(off, s))."""
    cdef Py_ssize_t e, lo = _first(off, s)
    if size - off <= 0:
        return lo
    e = (size - off + s - 1) // s
    if e > O:
        e = O
    if e < lo:
        e = lo
    return e
