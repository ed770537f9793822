"""SGEMM (engine/gemm): every compiled micro-kernel over every edge size, the full GEMM under
every kernel variant and thread count against float64 NumPy, and the boundary checks of
_C.sgemm.

Tolerance: a float32 dot product of length k is compared with the float64 one through a bound
proportional to sqrt(k) times the magnitude of the terms, (|op(A)| @ |op(B)|), so that
cancellation in C cannot make a correct result look wrong. Indexing or packing bugs give errors
of the order of the terms themselves, far above it.
"""

import threading

import numpy as np
import pytest

import convengine as ce
from convengine import _C

SUPPORTED = [isa for isa in _C.compiled_isas() if _C.cpu_supports(isa)]

# |error| <= RTOL * sqrt(k) * (|A| @ |B| + |beta * C| + |bias|) + ATOL
RTOL = 1e-5
ATOL = 1e-6


def assert_gemm_close(got, expected, magnitude, k):
    bound = RTOL * np.sqrt(max(k, 1)) * magnitude + ATOL
    err = np.abs(got.astype(np.float64) - expected)
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else None
    assert np.all(err <= bound), (
        f"max error {err.max():.3g} over bound at {worst}: got {got[worst]}, "
        f"expected {expected[worst]}")


def reference(a_op, b_op, alpha=1.0, beta=0.0, c=None, bias=None, bias_axis="col", relu=False):
    """float64 result and term magnitude of relu?(alpha op(A) op(B) + beta C + bias)."""
    a64, b64 = a_op.astype(np.float64), b_op.astype(np.float64)
    out = alpha * (a64 @ b64)
    mag = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    if beta != 0.0:
        out = out + beta * c.astype(np.float64)
        mag = mag + abs(beta) * np.abs(c.astype(np.float64))
    if bias is not None:
        b = bias.astype(np.float64)
        b = b[:, None] if bias_axis == "row" else b[None, :]
        out = out + b
        mag = mag + np.abs(b)
    if relu:
        out = np.maximum(out, 0.0)
    return out, mag


def uniform(rng, shape):
    return rng.uniform(-1.0, 1.0, shape).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(20240603)


# ---- block sizes -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", _C.compiled_isas())
def test_block_sizes_are_consistent(name):
    bs = _C.gemm_block_sizes(name)
    assert set(bs) == {"MR", "NR", "MC", "KC", "NC"}
    assert bs["MC"] % bs["MR"] == 0 and bs["NC"] % bs["NR"] == 0
    assert 1 <= bs["NR"] <= 64  # kMaxNR: what an SgemmBSource packer may be asked for
    assert bs["KC"] >= 1


# ---- micro-kernels -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", SUPPORTED)
def test_ukernel_every_edge_size(name, rng):
    """Every m in 1..MR, n in 1..NR, k around KC, beta 0 (C never read) and beta 1 (with an
    alpha), against float64; nothing outside the m x n tile is touched."""
    bs = _C.gemm_block_sizes(name)
    mr, nr, kc = bs["MR"], bs["NR"], bs["KC"]
    for k in sorted({0, 1, 2, 3, kc - 1, kc, kc + 1}):
        a = uniform(rng, (k, mr))
        b = uniform(rng, (k, nr))
        # C has a guard row and column: they must come back unchanged.
        for beta, alpha in ((0.0, 1.0), (1.0, -0.75)):
            c0 = uniform(rng, (mr + 1, nr + 1))
            if beta == 0.0:
                c0[:mr, :nr] = np.nan  # must never be read
            expected, mag = reference(a.T, b, alpha, beta, np.nan_to_num(c0[:mr, :nr]))
            for m in range(1, mr + 1):
                for n in range(1, nr + 1):
                    c = c0.copy()
                    _C._sgemm_ukernel(name, a, b, c, m, n, alpha=alpha, beta=beta)
                    assert_gemm_close(c[:m, :n], expected[:m, :n], mag[:m, :n], k)
                    outside = np.ones(c.shape, bool)
                    outside[:m, :n] = False
                    np.testing.assert_array_equal(c[outside], c0[outside],
                                                  err_msg=f"{name} wrote outside {m}x{n}")


@pytest.mark.parametrize("name", SUPPORTED)
def test_ukernel_epilogue(name, rng):
    """Bias per row and per column and ReLU, at every edge size."""
    bs = _C.gemm_block_sizes(name)
    mr, nr, k = bs["MR"], bs["NR"], 7
    a, b = uniform(rng, (k, mr)), uniform(rng, (k, nr))
    bias_row, bias_col = uniform(rng, mr), uniform(rng, nr)
    c0 = uniform(rng, (mr, nr))
    for kwargs, expected_fn in (
            (dict(bias_row=bias_row), lambda: reference(a.T, b, 1.0, 0.5, c0, bias_row, "row")),
            (dict(bias_col=bias_col, relu=True),
             lambda: reference(a.T, b, 1.0, 0.5, c0, bias_col, "col", relu=True))):
        expected, mag = expected_fn()
        for m in range(1, mr + 1):
            for n in range(1, nr + 1):
                c = c0.copy()
                _C._sgemm_ukernel(name, a, b, c, m, n, beta=0.5, **kwargs)
                assert_gemm_close(c[:m, :n], expected[:m, :n], mag[:m, :n], k)
                np.testing.assert_array_equal(c[m:], c0[m:])
                np.testing.assert_array_equal(c[:, n:], c0[:, n:])


def test_ukernel_hook_rejects_bad_input(rng):
    bs = _C.gemm_block_sizes("ref")
    a, b = uniform(rng, (3, bs["MR"])), uniform(rng, (3, bs["NR"]))
    c = np.zeros((bs["MR"], bs["NR"]), np.float32)
    with pytest.raises(ValueError, match="unknown ISA"):
        _C._sgemm_ukernel("sse9", a, b, c, 1, 1)
    with pytest.raises(ValueError, match="a_panel"):
        _C._sgemm_ukernel("ref", a[:, :-1].copy(), b, c, 1, 1)
    with pytest.raises(ValueError, match="b_panel"):
        _C._sgemm_ukernel("ref", a, b[:2], c, 1, 1)
    with pytest.raises(ValueError, match="m <= MR"):
        _C._sgemm_ukernel("ref", a, b, c, bs["MR"] + 1, 1)
    with pytest.raises(ValueError, match="'c'"):
        _C._sgemm_ukernel("ref", a, b, c[:1, :1].copy(), 2, 2)


# ---- full GEMM ---------------------------------------------------------------------------------

def make_operands(rng, m, k, n, trans_a, trans_b, pad=0):
    """op(A) (m x k) and op(B) (k x n), stored transposed when asked, as views into arrays with
    `pad` extra columns (so that the leading dimension is not the width)."""
    def stored(rows, cols):
        return uniform(rng, (rows, cols + pad))[:, :cols]
    a = stored(k, m) if trans_a else stored(m, k)
    b = stored(n, k) if trans_b else stored(k, n)
    return a, b, (a.T if trans_a else a), (b.T if trans_b else b)


def block_straddling_shapes(isa_name):
    bs = _C.gemm_block_sizes(isa_name)
    mr, nr, mc, kc, nc = bs["MR"], bs["NR"], bs["MC"], bs["KC"], bs["NC"]
    return [
        (mc + mr + 1, kc + 1, nc + nr + 1),   # one row/column/step of k past each block
        (mc - 1, 2 * kc + 3, nc - 1),         # just under MC and NC, three blocks of k
        (2 * mr + 1, kc - 1, 3 * nc + 5),     # many NC blocks, few rows
        (mr + 1, kc + 1, 2048 + 3 * nr + 5),  # wide: with 2 threads, each packs A privately
        (5 * mr + 1, 2 * kc + 1, 480),        # 2 threads share each A block (barrier)
    ]


@pytest.mark.parametrize("case", range(5))
def test_sgemm_straddles_blocks(isa, threads, rng, case):
    m, k, n = block_straddling_shapes(isa)[case]
    a, b, a_op, b_op = make_operands(rng, m, k, n, False, False)
    expected, mag = reference(a_op, b_op)
    assert_gemm_close(_C.sgemm(a, b), expected, mag, k)


@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "Bt"])
def test_sgemm_tall_and_narrow(isa, threads, rng, trans_b):
    """Few columns and many rows: the threads split the rows and share the B blocks or pack
    them each (the other shapes mostly split the columns)."""
    bs = _C.gemm_block_sizes(isa)
    # With 2 threads: < 256 rows per thread (B blocks packed together, barrier), then more than
    # MC rows (two A blocks; each thread packs the B blocks itself).
    for m in (40 * bs["MR"] + 1, bs["MC"] + 7):
        k, n = 2 * bs["KC"] + 5, 33
        a, b, a_op, b_op = make_operands(rng, m, k, n, False, trans_b)
        expected, mag = reference(a_op, b_op)
        assert_gemm_close(_C.sgemm(a, b, trans_b=trans_b), expected, mag, k)


@pytest.mark.parametrize("trans_a", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "Bt"])
def test_sgemm_transposes_and_leading_dimensions(isa, threads, rng, trans_a, trans_b):
    bs = _C.gemm_block_sizes(isa)
    # Odd sizes that leave partial micro-tiles in m and n, and k over one KC block.
    m, k, n = 3 * bs["MR"] + 5, bs["KC"] + 7, 4 * bs["NR"] + 3
    a, b, a_op, b_op = make_operands(rng, m, k, n, trans_a, trans_b, pad=3)
    assert a.strides[0] != a.shape[1] * 4  # really a padded view
    expected, mag = reference(a_op, b_op)
    got = _C.sgemm(a, b, trans_a=trans_a, trans_b=trans_b)
    assert_gemm_close(got, expected, mag, k)
    # The same through transposed views (F-contiguous operands become transpose flags).
    got_views = _C.sgemm(np.asfortranarray(a_op), np.asfortranarray(b_op))
    assert_gemm_close(got_views, expected, mag, k)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-2.0, 1.0), (0.5, -0.5), (0.0, 2.0)])
def test_sgemm_alpha_beta(isa, rng, alpha, beta):
    bs = _C.gemm_block_sizes(isa)
    m, k, n = 2 * bs["MR"] + 1, 2 * bs["KC"] + 1, 2 * bs["NR"] + 5
    a, b, a_op, b_op = make_operands(rng, m, k, n, False, True)
    c = uniform(rng, (m, n))
    expected, mag = reference(a_op, b_op, alpha, beta, c)
    if beta == 0.0:
        c[:] = np.nan  # beta == 0: C is only written
    if alpha == 0.0:
        a = a.copy()
        a[0, 0] = np.nan  # alpha == 0: A and B are not read
    out = _C.sgemm(a, b, trans_b=True, alpha=alpha, beta=beta, c=c)
    assert out is c or np.shares_memory(out, c)
    assert_gemm_close(c, expected, mag, k)


@pytest.mark.parametrize("bias_axis", ["row", "col"])
@pytest.mark.parametrize("relu", [False, True])
def test_sgemm_epilogue(isa, threads, rng, bias_axis, relu):
    """Bias and ReLU are applied once, after the last block of k (k spans three blocks, so a
    ReLU applied per block would clip partial sums and show up)."""
    bs = _C.gemm_block_sizes(isa)
    m, k, n = 2 * bs["MR"] + 3, 2 * bs["KC"] + 5, 3 * bs["NR"] + 1
    a, b, a_op, b_op = make_operands(rng, m, k, n, True, False)
    bias = uniform(rng, m if bias_axis == "row" else n)
    c = uniform(rng, (m, n))
    expected, mag = reference(a_op, b_op, 1.0, 0.25, c, bias, bias_axis, relu)
    _C.sgemm(a, b, trans_a=True, beta=0.25, c=c, bias=bias, bias_axis=bias_axis, relu=relu)
    assert_gemm_close(c, expected, mag, k)
    if relu:
        assert (c >= 0).all()


def test_sgemm_k_zero_and_empty(isa, rng):
    c = uniform(rng, (5, 4))
    bias = uniform(rng, 4)
    expected = np.maximum(2.0 * c.astype(np.float64) + bias, 0.0)
    a, b = np.zeros((5, 0), np.float32), np.zeros((0, 4), np.float32)
    _C.sgemm(a, b, beta=2.0, c=c, bias=bias, relu=True)
    np.testing.assert_allclose(c, expected, rtol=1e-6)
    np.testing.assert_array_equal(_C.sgemm(a, b), np.zeros((5, 4), np.float32))
    assert _C.sgemm(np.zeros((0, 3), np.float32), np.ones((3, 4), np.float32)).shape == (0, 4)
    assert _C.sgemm(np.ones((2, 3), np.float32), np.ones((3, 0), np.float32)).shape == (2, 0)


def test_sgemm_transposed_output(isa, rng):
    """An F-contiguous c is filled through C^T = op(B)^T op(A)^T, bias axis swapped."""
    m, k, n = 29, 70, 45
    a, b, a_op, b_op = make_operands(rng, m, k, n, False, False)
    c = np.asfortranarray(uniform(rng, (m, n)))
    bias = uniform(rng, m)
    expected, mag = reference(a_op, b_op, 1.0, 1.0, c, bias, "row", True)
    _C.sgemm(a, b, beta=1.0, c=c, bias=bias, bias_axis="row", relu=True)
    assert_gemm_close(c, expected, mag, k)


@pytest.mark.parametrize("trans_a", [False, True])
def test_sgemm_bsource_callback(isa, threads, rng, trans_a):
    """B handed over by a packer callback (the implicit-im2col entry point), over several KC
    and NC blocks and with partial micro-panels, equals the plain GEMM."""
    bs = _C.gemm_block_sizes(isa)
    m, k, n = 2 * bs["MR"] + 1, bs["KC"] + 9, bs["NC"] + bs["NR"] + 7
    a, b, a_op, b_op = make_operands(rng, m, k, n, trans_a, False)
    a = np.ascontiguousarray(a)
    got = _C._sgemm_bsource(a, b.copy(), trans_a=trans_a)
    np.testing.assert_array_equal(got, _C.sgemm(a, b, trans_a=trans_a))
    expected, mag = reference(a_op, b_op)
    assert_gemm_close(got, expected, mag, k)


def test_sgemm_same_result_on_any_thread_count(isa, rng):
    """Each element of C is summed by one thread in one order: results are bit-identical."""
    a, b, _, _ = make_operands(rng, 301, 777, 517, False, False)
    original = ce.get_num_threads()
    try:
        ce.set_num_threads(1)
        one = _C.sgemm(a, b)
        ce.set_num_threads(2)
        two = _C.sgemm(a, b)
    finally:
        ce.set_num_threads(original)
    np.testing.assert_array_equal(one, two)


def test_sgemm_concurrent_python_threads(rng):
    """Several Python threads calling at once (the GIL is released) get correct results."""
    a, b, _, _ = make_operands(rng, 200, 300, 400, False, False)
    expected, mag = reference(a, b)
    results = [None] * 4

    def work(i):
        for _ in range(3):
            results[i] = _C.sgemm(a, b)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for r in results:
        assert_gemm_close(r, expected, mag, 300)


# ---- bad input ---------------------------------------------------------------------------------

def test_sgemm_rejects_bad_input():
    a = np.ones((4, 3), np.float32)
    b = np.ones((3, 5), np.float32)
    with pytest.raises(ValueError, match="inner dimensions"):
        _C.sgemm(a, np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match="inner dimensions"):
        _C.sgemm(a, b, trans_a=True)
    with pytest.raises(TypeError, match="'a'.*float32"):
        _C.sgemm(a.astype(np.float64), b)
    with pytest.raises(TypeError, match="'b'.*float32"):
        _C.sgemm(a, b.astype(np.int32))
    with pytest.raises(TypeError, match="'a'.*numpy.ndarray"):
        _C.sgemm([[1.0, 2.0]], b)
    with pytest.raises(ValueError, match="'a'.*2-D"):
        _C.sgemm(np.ones(3, np.float32), b)
    with pytest.raises(ValueError, match="'b'.*2-D"):
        _C.sgemm(a, np.ones((1, 3, 5), np.float32))
    with pytest.raises(ValueError, match="'a'.*strides"):
        _C.sgemm(a[::-1], b)  # negative stride
    with pytest.raises(ValueError, match="'b'.*strides"):
        _C.sgemm(a, np.ones((6, 10), np.float32)[::2, ::2])  # no unit stride
    with pytest.raises(ValueError, match="'b'.*strides"):
        _C.sgemm(a, np.broadcast_to(np.ones(5, np.float32), (3, 5)))  # zero stride
    with pytest.raises(ValueError, match="'c'.*shape"):
        _C.sgemm(a, b, c=np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match="'c'.*float32"):
        _C.sgemm(a, b, c=np.zeros((4, 5), np.float64))
    read_only = np.zeros((4, 5), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="'c'.*writeable"):
        _C.sgemm(a, b, c=read_only)
    shared = np.ones((4, 8), np.float32)
    with pytest.raises(ValueError, match="'c' overlaps"):
        _C.sgemm(shared[:, :3], b, c=shared[:, 3:])
    with pytest.raises(ValueError, match="beta"):
        _C.sgemm(a, b, beta=1.0)
    with pytest.raises(ValueError, match="'bias'.*shape"):
        _C.sgemm(a, b, bias=np.ones(4, np.float32))  # default axis 'col' needs n = 5 values
    with pytest.raises(ValueError, match="'bias'.*shape"):
        _C.sgemm(a, b, bias=np.ones(5, np.float32), bias_axis="row")
    with pytest.raises(ValueError, match="bias_axis"):
        _C.sgemm(a, b, bias=np.ones(5, np.float32), bias_axis="diagonal")
    with pytest.raises(TypeError, match="'bias'.*float32"):
        _C.sgemm(a, b, bias=np.ones(5, np.float64))


def test_sgemm_accepts_padded_and_transposed_views(rng):
    a, b, a_op, b_op = make_operands(rng, 20, 30, 40, False, False, pad=5)
    expected, mag = reference(a_op, b_op)
    assert_gemm_close(_C.sgemm(a, b), expected, mag, 30)
    # a.T is F-contiguous-like (unit stride down the rows): taken as trans_a without a copy.
    at = np.ascontiguousarray(a.T)
    assert_gemm_close(_C.sgemm(at.T, b), expected, mag, 30)
    assert_gemm_close(_C.sgemm(at, b, trans_a=True), expected, mag, 30)
