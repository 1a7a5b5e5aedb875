# The sum of a row of floats in double, shared by the bias gradients (ext/conv_hwnc.pyx
# bias_grad, ext/conv_pointwise.pyx), included after the includer's `ctypedef fused
# floating`.
#
# One running sum `s = s + a[l]` is a chain of dependent additions, one every 4 cycles: on
# MobileNetV2's 32×96×32² δ it made ∂L/∂b 1.2 ms, more than ∂L/∂x (RESULTS.md, session 25).
# Eight sums over the residues l mod 8, added pairwise in a fixed order at the end, are eight
# independent chains (and one vector): the same order on every call, so the same bits, and
# within a few units of the last place of double of the one-chain sum.

cdef inline double _row_sum(const floating *a, Py_ssize_t n) noexcept nogil:
    """Σ_l a[l] for l < n, in double: s_r = Σ a[8m + r] for r < 8, then
    ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + the last n mod 8 values in order."""
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0
    cdef Py_ssize_t l, m = n - n % 8
    for l in range(0, m, 8):
        s0 = s0 + a[l]
        s1 = s1 + a[l + 1]
        s2 = s2 + a[l + 2]
        s3 = s3 + a[l + 3]
        s4 = s4 + a[l + 4]
        s5 = s5 + a[l + 5]
        s6 = s6 + a[l + 6]
        s7 = s7 + a[l + 7]
    s0 = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for l in range(m, n):
        s0 = s0 + a[l]
    return s0
