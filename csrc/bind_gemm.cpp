// GEMM: _C.sgemm (numpy in, numpy out), _C.gemm_block_sizes, and the test hook
// _C._sgemm_ukernel that runs one micro-kernel of a given ISA on given packed panels.
//
// Operands are float32 2-D arrays. Besides C-contiguous arrays, any view whose rows or columns
// are unit-stride with a positive stride the other way is taken without a copy: a row-major view
// with padded rows (a[:, :k]) becomes a leading dimension, and a column-major one (a transposed
// view a.T, or an F-contiguous array) becomes a transpose flag. Anything else (negative or zero
// strides, both strides non-unit) raises ValueError naming the argument.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "array_checks.h"
#include "bindings.h"
#include "core/isa.h"
#include "core/kernel_table.h"
#include "gemm/gemm.h"

namespace convengine::bindings {

namespace {

// A 2-D float32 operand as the engine sees it: row-major storage `rows` x `cols` with leading
// dimension `ld`, and whether that storage holds the operand transposed.
struct Matrix {
    py::array array;  // keeps the buffer alive
    const float* data = nullptr;
    int64_t rows = 0;  // of the operand as the caller sees it
    int64_t cols = 0;
    int64_t ld = 1;
    bool transposed = false;  // storage is the transpose (cols x rows, row-major)
};

std::string arg_prefix(const char* arg) { return std::string("sgemm: argument '") + arg + "' "; }

py::array require_float32_2d(const py::handle& obj, const char* arg) {
    if (!py::isinstance<py::array>(obj)) {
        throw py::type_error(arg_prefix(arg) + "must be a numpy.ndarray, got " +
                             std::string(py::str(py::type::of(obj).attr("__name__"))));
    }
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!a.dtype().is(py::dtype::of<float>())) {
        throw py::type_error(arg_prefix(arg) + "must have dtype float32, got " +
                             std::string(py::str(a.dtype())));
    }
    if (a.ndim() != 2) {
        throw py::value_error(arg_prefix(arg) + "must be 2-D, got " + std::to_string(a.ndim()) +
                              "-D with shape " + shape_string(a));
    }
    return a;
}

std::string strides_of(const py::array& a) {
    return "(" + std::to_string(a.strides(0)) + ", " + std::to_string(a.strides(1)) + ")";
}

Matrix as_matrix(const py::handle& obj, const char* arg) {
    Matrix m;
    m.array = require_float32_2d(obj, arg);
    const py::array& a = m.array;
    m.rows = a.shape(0);
    m.cols = a.shape(1);
    m.data = static_cast<const float*>(a.data());
    if (reinterpret_cast<std::uintptr_t>(m.data) % alignof(float) != 0)
        throw py::value_error(arg_prefix(arg) + "must be aligned to 4 bytes (pass a copy)");
    constexpr int64_t f = sizeof(float);
    const int64_t s0 = a.strides(0), s1 = a.strides(1);
    if (m.rows == 0 || m.cols == 0) {
        m.ld = m.cols > 1 ? m.cols : 1;
        return m;
    }
    // A stride along an axis of extent 1 is never used: treat it as whatever fits.
    const bool unit_cols = m.cols == 1 || s1 == f;
    const bool unit_rows = m.rows == 1 || s0 == f;
    if (unit_cols && (m.rows == 1 || (s0 > 0 && s0 % f == 0 && s0 / f >= m.cols))) {
        m.ld = m.rows == 1 ? m.cols : s0 / f;
        return m;
    }
    if (unit_rows && (m.cols == 1 || (s1 > 0 && s1 % f == 0 && s1 / f >= m.rows))) {
        m.transposed = true;
        m.ld = m.cols == 1 ? m.rows : s1 / f;
        return m;
    }
    throw py::value_error(arg_prefix(arg) + "must be C-contiguous, F-contiguous (a transposed "
                          "view) or a view with unit stride along one axis and a positive "
                          "stride along the other; got shape " + shape_string(a) +
                          " with strides " + strides_of(a) + " (pass numpy.ascontiguousarray)");
}

// Whether two arrays' memory ranges intersect.
bool overlaps(const py::array& x, const py::array& y) {
    if (x.size() == 0 || y.size() == 0) return false;
    auto range = [](const py::array& a, std::uintptr_t* lo, std::uintptr_t* hi) {
        std::intptr_t begin = 0, end = 0;
        for (py::ssize_t d = 0; d < a.ndim(); ++d) {
            const std::intptr_t span = static_cast<std::intptr_t>(a.shape(d) - 1) * a.strides(d);
            (span < 0 ? begin : end) += span;
        }
        const auto base = reinterpret_cast<std::uintptr_t>(a.data());
        *lo = base + begin;
        *hi = base + end + a.itemsize();
    };
    std::uintptr_t xl, xh, yl, yh;
    range(x, &xl, &xh);
    range(y, &yl, &yh);
    return xl < yh && yl < xh;
}

BiasAxis parse_bias_axis(const std::string& axis) {
    if (axis == "row") return BiasAxis::row;
    if (axis == "col") return BiasAxis::col;
    throw py::value_error("sgemm: argument 'bias_axis' must be 'row' or 'col', got '" + axis + "'");
}

py::array sgemm_py(const py::handle& a_obj, const py::handle& b_obj, bool trans_a, bool trans_b,
                   float alpha, float beta, const py::object& c_obj, const py::object& bias_obj,
                   const std::string& bias_axis_name, bool relu) {
    const Matrix A = as_matrix(a_obj, "a");
    const Matrix B = as_matrix(b_obj, "b");
    // op(A) is m x k and op(B) is k x n, as the caller sees them.
    const int64_t m = trans_a ? A.cols : A.rows;
    const int64_t k = trans_a ? A.rows : A.cols;
    const int64_t kb = trans_b ? B.cols : B.rows;
    const int64_t n = trans_b ? B.rows : B.cols;
    if (k != kb) {
        throw py::value_error("sgemm: inner dimensions differ: op(a) is " + std::to_string(m) +
                              " x " + std::to_string(k) + " but op(b) is " + std::to_string(kb) +
                              " x " + std::to_string(n) + " (a has shape " +
                              shape_string(A.array) + ", trans_a=" + (trans_a ? "True" : "False") +
                              "; b has shape " + shape_string(B.array) + ", trans_b=" +
                              (trans_b ? "True" : "False") + ")");
    }
    // The engine's flags: the caller's transpose, flipped when the storage is transposed.
    const bool eng_ta = trans_a != A.transposed;
    const bool eng_tb = trans_b != B.transposed;

    GemmEpilogue epilogue;
    epilogue.relu = relu;
    py::array bias_array;
    if (!bias_obj.is_none()) {
        bias_array = require_float32(bias_obj, "sgemm", "bias");
        epilogue.bias_axis = parse_bias_axis(bias_axis_name);
        const int64_t want = epilogue.bias_axis == BiasAxis::row ? m : n;
        if (bias_array.ndim() != 1 || bias_array.shape(0) != want) {
            throw py::value_error("sgemm: argument 'bias' must have shape (" +
                                  std::to_string(want) + ",) for bias_axis='" + bias_axis_name +
                                  "', got " + shape_string(bias_array));
        }
        epilogue.bias = static_cast<const float*>(bias_array.data());
    }

    // C: given (written in place and returned) or allocated.
    py::array c_array;
    float* c = nullptr;
    int64_t ldc = n > 1 ? n : 1;
    bool c_transposed = false;
    if (c_obj.is_none()) {
        if (beta != 0.0f)
            throw py::value_error("sgemm: beta != 0 needs argument 'c' (the matrix it scales)");
        c_array = FloatArray({m, n});
        c = static_cast<float*>(c_array.mutable_data());
    } else {
        const Matrix C = as_matrix(c_obj, "c");
        if (C.rows != m || C.cols != n) {
            throw py::value_error("sgemm: argument 'c' must have shape (" + std::to_string(m) +
                                  ", " + std::to_string(n) + "), got " + shape_string(C.array));
        }
        if (!C.array.writeable()) throw py::value_error("sgemm: argument 'c' must be writeable");
        if (overlaps(C.array, A.array) || overlaps(C.array, B.array) ||
            (bias_array && overlaps(C.array, bias_array)))
            throw py::value_error("sgemm: argument 'c' overlaps an input ('a', 'b' or 'bias')");
        c_array = C.array;
        c = const_cast<float*>(C.data);
        ldc = C.ld;
        c_transposed = C.transposed;
    }

    const float* pa = A.data;
    const float* pb = B.data;
    if (!c_transposed) {
        call_engine([&] {
            return sgemm(eng_ta, eng_tb, m, n, k, alpha, pa, A.ld, pb, B.ld, beta, c, ldc, epilogue);
        });
    } else {
        // C is stored transposed: compute C^T = op(B)^T op(A)^T into its row-major storage.
        GemmEpilogue e2 = epilogue;
        if (e2.bias_axis == BiasAxis::row) e2.bias_axis = BiasAxis::col;
        else if (e2.bias_axis == BiasAxis::col) e2.bias_axis = BiasAxis::row;
        call_engine([&] {
            return sgemm(!eng_tb, !eng_ta, n, m, k, alpha, pb, B.ld, pa, A.ld, beta, c, ldc, e2);
        });
    }
    return c_array;
}

Isa isa_or_raise(const std::string& name, const char* op) {
    Isa isa;
    if (!parse_isa(name.c_str(), &isa))
        throw py::value_error(std::string(op) + ": unknown ISA '" + name +
                              "'; expected one of ref, avx2, avx512");
    return isa;
}

// 64-byte aligned copy of a float32 array's contents (packed panels must be aligned).
struct AlignedCopy {
    std::unique_ptr<float[]> storage;
    float* data = nullptr;
    explicit AlignedCopy(const FloatArray& a) {
        const int64_t n = a.size();
        storage.reset(new float[static_cast<size_t>(n + 16)]);
        auto p = reinterpret_cast<std::uintptr_t>(storage.get());
        data = reinterpret_cast<float*>((p + 63) & ~std::uintptr_t{63});
        if (n) std::memcpy(data, a.data(), static_cast<size_t>(n) * sizeof(float));
    }
};

void ukernel_py(const std::string& isa_name_, const py::handle& a_obj, const py::handle& b_obj,
                const py::handle& c_obj, int m, int n, float alpha, float beta,
                const py::object& bias_row_obj, const py::object& bias_col_obj, bool relu) {
    const char* op = "_sgemm_ukernel";
    const Isa isa = isa_or_raise(isa_name_, op);
    if (!cpu_supports(isa))
        throw py::value_error(std::string(op) + ": this CPU cannot run ISA '" + isa_name_ + "'");
    const GemmKernels& g = kernels_for(isa).gemm;
    FloatArray a = require_float32(a_obj, op, "a_panel");
    FloatArray b = require_float32(b_obj, op, "b_panel");
    FloatArray c = require_writeable_float32(c_obj, op, "c");
    if (a.ndim() != 2 || a.shape(1) != g.mr)
        throw py::value_error(std::string(op) + ": 'a_panel' must have shape (k, MR=" +
                              std::to_string(g.mr) + "), got " + shape_string(a));
    const int64_t k = a.shape(0);
    if (b.ndim() != 2 || b.shape(0) != k || b.shape(1) != g.nr)
        throw py::value_error(std::string(op) + ": 'b_panel' must have shape (k=" +
                              std::to_string(k) + ", NR=" + std::to_string(g.nr) + "), got " +
                              shape_string(b));
    if (m < 1 || m > g.mr || n < 1 || n > g.nr)
        throw py::value_error(std::string(op) + ": need 1 <= m <= MR and 1 <= n <= NR");
    if (c.ndim() != 2 || c.shape(0) < m || c.shape(1) < n)
        throw py::value_error(std::string(op) + ": 'c' must be 2-D with at least m rows and n "
                              "columns, got " + shape_string(c));
    UkrStore store{alpha, beta, nullptr, nullptr, relu ? 1 : 0};
    FloatArray bias_row, bias_col;
    if (!bias_row_obj.is_none()) {
        bias_row = require_float32(bias_row_obj, op, "bias_row");
        if (bias_row.ndim() != 1 || bias_row.shape(0) < m)
            throw py::value_error(std::string(op) + ": 'bias_row' needs at least m values");
        store.bias_row = bias_row.data();
    }
    if (!bias_col_obj.is_none()) {
        bias_col = require_float32(bias_col_obj, op, "bias_col");
        if (bias_col.ndim() != 1 || bias_col.shape(0) < n)
            throw py::value_error(std::string(op) + ": 'bias_col' needs at least n values");
        store.bias_col = bias_col.data();
    }
    const AlignedCopy ap(a), bp(b);
    float* pc = c.mutable_data();
    const int64_t ldc = c.shape(1);
    call_engine([&] {
        g.ukr(k, ap.data, bp.data, pc, ldc, m, n, &store);
        return Status::success();
    });
}

// A packer with SgemmBSource's contract reading a dense row-major k x n matrix with plain loops,
// independent of the kernel table's packers: the test of sgemm_bsource's callback path.
struct DenseSource {
    const float* b;
    int64_t ldb;
};

void pack_dense(const void* ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr,
                float* dst) {
    const auto* src = static_cast<const DenseSource*>(ctx);
    for (int64_t q = 0; q * nr < nc; ++q)
        for (int64_t p = 0; p < kc; ++p)
            for (int jj = 0; jj < nr; ++jj) {
                const int64_t j = q * nr + jj;
                dst[(q * kc + p) * nr + jj] = j < nc ? src->b[(k0 + p) * src->ldb + j0 + j] : 0.0f;
            }
}

py::array bsource_py(const py::handle& a_obj, const py::handle& b_obj, bool trans_a) {
    const char* op = "_sgemm_bsource";
    FloatArray a = require_float32(a_obj, op, "a");
    FloatArray b = require_float32(b_obj, op, "b");
    if (a.ndim() != 2 || b.ndim() != 2)
        throw py::value_error(std::string(op) + ": 'a' and 'b' must be 2-D");
    const int64_t m = trans_a ? a.shape(1) : a.shape(0);
    const int64_t k = trans_a ? a.shape(0) : a.shape(1);
    if (b.shape(0) != k) throw py::value_error(std::string(op) + ": inner dimensions differ");
    const int64_t n = b.shape(1);
    FloatArray c({m, n});
    const DenseSource src{b.data(), n > 1 ? n : 1};
    const SgemmBSource source{pack_dense, &src};
    const float* pa = a.data();
    const int64_t lda = a.shape(1) > 1 ? a.shape(1) : 1;
    float* pc = c.mutable_data();
    call_engine([&] {
        return sgemm_bsource(trans_a, m, n, k, 1.0f, pa, lda, source, 0.0f, pc, n > 1 ? n : 1);
    });
    return c;
}

}  // namespace

void bind_gemm(py::module_& m) {
    m.def("sgemm", &sgemm_py, py::arg("a"), py::arg("b"), py::kw_only(),
          py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("alpha") = 1.0f,
          py::arg("beta") = 0.0f, py::arg("c") = py::none(), py::arg("bias") = py::none(),
          py::arg("bias_axis") = "col", py::arg("relu") = false,
          R"doc(C = relu?(alpha * op(a) @ op(b) + beta * c + bias), float32.

op(a) = a.T if trans_a else a (m x k); op(b) = b.T if trans_b else b (k x n).
a, b: float32 2-D arrays: C-contiguous, or F-contiguous / transposed views (taken as a
transpose without a copy), or views with unit stride along one axis.
c: None (a new (m, n) array is returned; beta must be 0) or a float32 (m, n) array, written in
place and returned; with beta == 0 its old contents are never read.
bias: None or float32 (m,) for bias_axis='row' (bias[i] added to row i), (n,) for
bias_axis='col' (bias[j] added to column j, as numpy broadcasting of a 1-D bias does).
relu: apply max(., 0) after the bias. The GIL is released during the computation.)doc");

    m.def("gemm_block_sizes",
          [](const std::string& name) {
              const GemmKernels& g = kernels_for(isa_or_raise(name, "gemm_block_sizes")).gemm;
              py::dict d;
              d["MR"] = g.mr;
              d["NR"] = g.nr;
              d["MC"] = g.mc;
              d["KC"] = g.kc;
              d["NC"] = g.nc;
              return d;
          },
          py::arg("isa"),
          "Register tile (MR x NR) and cache blocks (MC, KC, NC) of an ISA's GEMM micro-kernel.");

    m.def("_sgemm_bsource", &bsource_py, py::arg("a"), py::arg("b"), py::kw_only(),
          py::arg("trans_a") = false,
          "Test hook: op(a) @ b through sgemm_bsource, B handed over by a plain-loop packer "
          "callback (C-contiguous float32 a and b).");

    m.def("_sgemm_ukernel", &ukernel_py, py::arg("isa"), py::arg("a_panel"), py::arg("b_panel"),
          py::arg("c"), py::arg("m"), py::arg("n"), py::kw_only(), py::arg("alpha") = 1.0f,
          py::arg("beta") = 0.0f, py::arg("bias_row") = py::none(),
          py::arg("bias_col") = py::none(), py::arg("relu") = false,
          R"doc(Test hook: runs ISA `isa`'s GEMM micro-kernel once.

a_panel: (k, MR) packed A (a_panel[p, i] = op(A)[i, p]); b_panel: (k, NR) packed B;
c: C-contiguous float32 with at least m rows and n columns; its top-left m x n tile is updated
in place as the micro-kernel contract says (engine/gemm/README.md).)doc");
}

}  // namespace convengine::bindings
