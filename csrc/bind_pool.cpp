// Pooling kernels: max, average, adaptive average/max, max_unpool, forward and backward.
// float32 C-contiguous (N, C, *spatial) tensors with 1 to 3 spatial dims, int64 indices;
// window parameters are sequences of one int per spatial dim (the Python layer expands ints).
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "array_checks.h"
#include "bindings.h"
#include "pool/pool.h"

namespace convengine::bindings {

namespace {

using IndexArray = py::array_t<int64_t, py::array::c_style>;
using Shape = std::vector<py::ssize_t>;

std::string prefix(const char* op, const char* arg) {
    return std::string(op) + ": argument '" + arg + "' ";
}

std::string shape_text(const Shape& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

// An int64, C-contiguous, aligned ndarray (indices), without copying it.
IndexArray require_int64(const py::handle& obj, const char* op, const char* arg,
                         bool writeable = false) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(prefix(op, arg) + "must be a numpy.ndarray, got " +
                             std::string(py::str(py::type::of(obj).attr("__name__"))));
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!a.dtype().is(py::dtype::of<int64_t>()))
        throw py::type_error(prefix(op, arg) + "must have dtype int64, got " +
                             std::string(py::str(a.dtype())));
    const auto flags = py::detail::array_proxy(a.ptr())->flags;
    if (!(flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_) ||
        !(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
        throw py::value_error(prefix(op, arg) + "must be C-contiguous and aligned");
    if (writeable && !a.writeable()) throw py::value_error(prefix(op, arg) + "must be writeable");
    return py::reinterpret_borrow<IndexArray>(a);
}

// The number of spatial dims of an (N, C, *spatial) shape: 1, 2 or 3.
int spatial_dims(const Shape& shape, const char* op, const char* arg) {
    if (shape.size() < 3 || shape.size() > 5)
        throw py::value_error(prefix(op, arg) + "must be 3-D, 4-D or 5-D (N, C, *spatial), got shape " +
                              shape_text(shape));
    return static_cast<int>(shape.size()) - 2;
}

// `obj` as exactly `count` ints.
std::vector<int64_t> int_list(const py::handle& obj, size_t count, const char* op, const char* arg) {
    if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj))
        throw py::type_error(prefix(op, arg) + "must be a sequence of " + std::to_string(count) +
                             " ints");
    py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
    if (seq.size() != count)
        throw py::value_error(prefix(op, arg) + "must have " + std::to_string(count) +
                              " values, got " + std::to_string(seq.size()));
    std::vector<int64_t> values;
    for (const py::handle item : seq) {
        if (py::isinstance<py::bool_>(item) || !py::isinstance<py::int_>(item))
            throw py::type_error(prefix(op, arg) + "must contain ints, got " +
                                 std::string(py::str(py::type::of(item).attr("__name__"))));
        values.push_back(item.cast<int64_t>());
    }
    return values;
}

// A shape argument (N, C, *spatial) given as a sequence of ints.
Shape shape_arg(const py::handle& obj, const char* op, const char* arg) {
    if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj))
        throw py::type_error(prefix(op, arg) + "must be a sequence of ints");
    const size_t n = py::len(obj);
    Shape shape;
    for (int64_t v : int_list(obj, n, op, arg)) {
        if (v < 0) throw py::value_error(prefix(op, arg) + "must not have negative sizes");
        shape.push_back(static_cast<py::ssize_t>(v));
    }
    spatial_dims(shape, op, arg);
    return shape;
}

// `out` checked against `shape` (float32, writeable, no partial overlap with any input), or a
// new array of that shape.
FloatArray float_output(const py::object& out, const Shape& shape,
                        std::initializer_list<const py::array*> inputs, const char* op) {
    if (out.is_none()) return FloatArray(shape);
    FloatArray result = require_writeable_float32(out, op, "out");
    if (shape_of(result) != shape)
        throw py::value_error(prefix(op, "out") + "must have shape " + shape_text(shape) +
                              ", got " + shape_text(shape_of(result)));
    for (const py::array* in : inputs) require_no_partial_overlap(result, *in, op);
    return result;
}

IndexArray index_output(const py::object& indices, const Shape& shape, const char* op) {
    if (indices.is_none()) return IndexArray(shape);
    IndexArray result = require_int64(indices, op, "indices", true);
    if (shape_of(result) != shape)
        throw py::value_error(prefix(op, "indices") + "must have shape " + shape_text(shape) +
                              ", got " + shape_text(shape_of(result)));
    return result;
}

void require_shape(const py::array& a, const Shape& shape, const char* op, const char* arg) {
    if (shape_of(a) != shape)
        throw py::value_error(prefix(op, arg) + "must have shape " + shape_text(shape) + ", got " +
                              shape_text(shape_of(a)));
}

// PoolParams for an input of `shape` (N, C, *spatial); window arguments one int per dim.
PoolParams pool_params(const Shape& shape, const char* op, const py::handle& kernel_size,
                       const py::handle& stride, const py::handle& padding,
                       const py::handle& dilation, bool ceil_mode) {
    const int nd = spatial_dims(shape, op, "x");
    PoolParams p;
    p.nd = nd;
    p.batch = shape[0];
    p.channels = shape[1];
    const auto k = int_list(kernel_size, nd, op, "kernel_size");
    const auto s = int_list(stride, nd, op, "stride");
    const auto pad = int_list(padding, nd, op, "padding");
    const auto d = dilation.is_none() ? std::vector<int64_t>(nd, 1)
                                      : int_list(dilation, nd, op, "dilation");
    for (int i = 0; i < nd; ++i) {
        p.input[i] = shape[2 + i];
        p.kernel[i] = k[i];
        p.stride[i] = s[i];
        p.padding[i] = pad[i];
        p.dilation[i] = d[i];
    }
    p.ceil_mode = ceil_mode;
    return p;
}

Shape pooled_shape(const PoolParams& p) {
    int64_t out[3];
    raise_if_error(pool_output_size(p, out));
    Shape shape{static_cast<py::ssize_t>(p.batch), static_cast<py::ssize_t>(p.channels)};
    for (int i = 0; i < p.nd; ++i) shape.push_back(static_cast<py::ssize_t>(out[i]));
    return shape;
}

int64_t divisor_arg(const py::object& divisor_override, const char* op) {
    if (divisor_override.is_none()) return 0;
    if (py::isinstance<py::bool_>(divisor_override) || !py::isinstance<py::int_>(divisor_override))
        throw py::type_error(prefix(op, "divisor_override") + "must be an int or None");
    const int64_t v = divisor_override.cast<int64_t>();
    if (v == 0) throw py::value_error(prefix(op, "divisor_override") + "must not be zero");
    return v;
}

AdaptivePoolParams adaptive_params(const Shape& shape, const std::vector<int64_t>& o,
                                   const char* op) {
    const int nd = spatial_dims(shape, op, "x");
    AdaptivePoolParams p;
    p.nd = nd;
    p.batch = shape[0];
    p.channels = shape[1];
    for (int i = 0; i < nd; ++i) {
        if (o[i] < 1) throw py::value_error(prefix(op, "output_size") + "must be >= 1 in every dim");
        p.input[i] = shape[2 + i];
        p.output[i] = o[i];
    }
    return p;
}

Shape adaptive_shape(const AdaptivePoolParams& p) {
    Shape shape{static_cast<py::ssize_t>(p.batch), static_cast<py::ssize_t>(p.channels)};
    for (int i = 0; i < p.nd; ++i) shape.push_back(static_cast<py::ssize_t>(p.output[i]));
    return shape;
}

int64_t product(const Shape& shape, size_t from, size_t to) {
    int64_t n = 1;
    for (size_t i = from; i < to; ++i) n *= shape[i];
    return n;
}

// For the index-driven passes: planes = N*C, sizes of the pooled and full planes; the two
// shapes must agree in (N, C) and in the number of spatial dims.
void index_geometry(const Shape& pooled, const Shape& full, const char* op, const char* pooled_arg,
                    const char* full_arg, int64_t* planes, int64_t* pooled_size,
                    int64_t* full_size) {
    spatial_dims(pooled, op, pooled_arg);
    spatial_dims(full, op, full_arg);
    if (pooled.size() != full.size() || pooled[0] != full[0] || pooled[1] != full[1])
        throw py::value_error(std::string(op) + ": '" + pooled_arg + "' of shape " +
                              shape_text(pooled) + " and '" + full_arg + "' of shape " +
                              shape_text(full) +
                              " must have the same (N, C) and number of spatial dims");
    *planes = product(full, 0, 2);
    *pooled_size = product(pooled, 2, pooled.size());
    *full_size = product(full, 2, full.size());
}

}  // namespace

void bind_pool(py::module_& m) {
    m.def(
        "max_pool_forward",
        [](const py::handle& x_obj, const py::handle& kernel_size, const py::handle& stride,
           const py::handle& padding, const py::handle& dilation, bool ceil_mode,
           bool return_indices, const py::object& out, const py::object& indices) -> py::object {
            const char* op = "max_pool_forward";
            FloatArray x = require_float32(x_obj, op, "x");
            const PoolParams p =
                pool_params(shape_of(x), op, kernel_size, stride, padding, dilation, ceil_mode);
            const Shape shape = pooled_shape(p);
            FloatArray y = float_output(out, shape, {&x}, op);
            IndexArray idx;
            int64_t* pi = nullptr;
            if (return_indices) {
                idx = index_output(indices, shape, op);
                pi = idx.mutable_data();
            }
            const float* px = x.data();
            float* py_ = y.mutable_data();
            call_engine([&] { return max_pool_forward(p, px, py_, pi); });
            if (return_indices) return py::make_tuple(y, idx);
            return std::move(y);
        },
        py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("ceil_mode") = false, py::arg("return_indices") = false,
        py::arg("out") = py::none(), py::arg("indices") = py::none(),
        "Max pooling of x (N, C, *in): out, or (out, int64 indices into each (N, C) plane).");

    m.def(
        "max_pool_backward",
        [](const py::handle& grad_obj, const py::handle& indices_obj,
           const py::handle& input_shape, const py::object& out) {
            const char* op = "max_pool_backward";
            FloatArray grad = require_float32(grad_obj, op, "grad_out");
            IndexArray idx = require_int64(indices_obj, op, "indices");
            require_shape(idx, shape_of(grad), op, "indices");
            const Shape full = shape_arg(input_shape, op, "input_shape");
            int64_t planes, pooled, full_size;
            index_geometry(shape_of(grad), full, op, "grad_out", "input_shape", &planes, &pooled,
                           &full_size);
            FloatArray gx = float_output(out, full, {&grad}, op);
            const float* pg = grad.data();
            const int64_t* pi = idx.data();
            float* po = gx.mutable_data();
            call_engine([&] { return max_pool_backward(planes, full_size, pooled, pg, pi, po); });
            return gx;
        },
        py::arg("grad_out"), py::arg("indices"), py::arg("input_shape"),
        py::arg("out") = py::none(),
        "Gradient of max pooling (and adaptive max pooling): grad_out scattered to the indices.");

    m.def(
        "avg_pool_forward",
        [](const py::handle& x_obj, const py::handle& kernel_size, const py::handle& stride,
           const py::handle& padding, bool ceil_mode, bool count_include_pad,
           const py::object& divisor_override, const py::object& out) {
            const char* op = "avg_pool_forward";
            FloatArray x = require_float32(x_obj, op, "x");
            PoolParams p =
                pool_params(shape_of(x), op, kernel_size, stride, padding, py::none(), ceil_mode);
            p.count_include_pad = count_include_pad;
            p.divisor_override = divisor_arg(divisor_override, op);
            FloatArray y = float_output(out, pooled_shape(p), {&x}, op);
            const float* px = x.data();
            float* py_ = y.mutable_data();
            call_engine([&] { return avg_pool_forward(p, px, py_); });
            return y;
        },
        py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("ceil_mode") = false, py::arg("count_include_pad") = true,
        py::arg("divisor_override") = py::none(), py::arg("out") = py::none(),
        "Average pooling of x (N, C, *in) with PyTorch's divisor rules.");

    m.def(
        "avg_pool_backward",
        [](const py::handle& grad_obj, const py::handle& input_shape,
           const py::handle& kernel_size, const py::handle& stride, const py::handle& padding,
           bool ceil_mode, bool count_include_pad, const py::object& divisor_override,
           const py::object& out) {
            const char* op = "avg_pool_backward";
            FloatArray grad = require_float32(grad_obj, op, "grad_out");
            const Shape full = shape_arg(input_shape, op, "input_shape");
            PoolParams p = pool_params(full, op, kernel_size, stride, padding, py::none(), ceil_mode);
            p.count_include_pad = count_include_pad;
            p.divisor_override = divisor_arg(divisor_override, op);
            require_shape(grad, pooled_shape(p), op, "grad_out");
            FloatArray gx = float_output(out, full, {&grad}, op);
            const float* pg = grad.data();
            float* po = gx.mutable_data();
            call_engine([&] { return avg_pool_backward(p, pg, po); });
            return gx;
        },
        py::arg("grad_out"), py::arg("input_shape"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("ceil_mode") = false, py::arg("count_include_pad") = true,
        py::arg("divisor_override") = py::none(), py::arg("out") = py::none(),
        "Gradient of average pooling with respect to its input.");

    m.def(
        "adaptive_avg_pool_forward",
        [](const py::handle& x_obj, const py::handle& output_size, const py::object& out) {
            const char* op = "adaptive_avg_pool_forward";
            FloatArray x = require_float32(x_obj, op, "x");
            const int nd = spatial_dims(shape_of(x), op, "x");
            const AdaptivePoolParams p =
                adaptive_params(shape_of(x), int_list(output_size, nd, op, "output_size"), op);
            FloatArray y = float_output(out, adaptive_shape(p), {&x}, op);
            const float* px = x.data();
            float* py_ = y.mutable_data();
            call_engine([&] { return adaptive_avg_pool_forward(p, px, py_); });
            return y;
        },
        py::arg("x"), py::arg("output_size"), py::arg("out") = py::none(),
        "Adaptive average pooling of x (N, C, *in) to (N, C, *output_size).");

    m.def(
        "adaptive_avg_pool_backward",
        [](const py::handle& grad_obj, const py::handle& input_shape, const py::object& out) {
            const char* op = "adaptive_avg_pool_backward";
            FloatArray grad = require_float32(grad_obj, op, "grad_out");
            const Shape full = shape_arg(input_shape, op, "input_shape");
            const Shape g = shape_of(grad);
            int64_t planes, pooled, full_size;
            index_geometry(g, full, op, "grad_out", "input_shape", &planes, &pooled, &full_size);
            const AdaptivePoolParams p =
                adaptive_params(full, std::vector<int64_t>(g.begin() + 2, g.end()), op);
            FloatArray gx = float_output(out, full, {&grad}, op);
            const float* pg = grad.data();
            float* po = gx.mutable_data();
            call_engine([&] { return adaptive_avg_pool_backward(p, pg, po); });
            return gx;
        },
        py::arg("grad_out"), py::arg("input_shape"), py::arg("out") = py::none(),
        "Gradient of adaptive average pooling (output size taken from grad_out).");

    m.def(
        "adaptive_max_pool_forward",
        [](const py::handle& x_obj, const py::handle& output_size, bool return_indices,
           const py::object& out, const py::object& indices) -> py::object {
            const char* op = "adaptive_max_pool_forward";
            FloatArray x = require_float32(x_obj, op, "x");
            const int nd = spatial_dims(shape_of(x), op, "x");
            const AdaptivePoolParams p =
                adaptive_params(shape_of(x), int_list(output_size, nd, op, "output_size"), op);
            const Shape shape = adaptive_shape(p);
            FloatArray y = float_output(out, shape, {&x}, op);
            IndexArray idx;
            int64_t* pi = nullptr;
            if (return_indices) {
                idx = index_output(indices, shape, op);
                pi = idx.mutable_data();
            }
            const float* px = x.data();
            float* py_ = y.mutable_data();
            call_engine([&] { return adaptive_max_pool_forward(p, px, py_, pi); });
            if (return_indices) return py::make_tuple(y, idx);
            return std::move(y);
        },
        py::arg("x"), py::arg("output_size"), py::arg("return_indices") = false,
        py::arg("out") = py::none(), py::arg("indices") = py::none(),
        "Adaptive max pooling of x (N, C, *in): out, or (out, int64 indices).");

    m.def(
        "max_unpool_forward",
        [](const py::handle& x_obj, const py::handle& indices_obj, const py::handle& output_size,
           const py::object& out) {
            const char* op = "max_unpool_forward";
            FloatArray x = require_float32(x_obj, op, "x");
            IndexArray idx = require_int64(indices_obj, op, "indices");
            require_shape(idx, shape_of(x), op, "indices");
            const int nd = spatial_dims(shape_of(x), op, "x");
            Shape full{x.shape(0), x.shape(1)};
            for (int64_t v : int_list(output_size, nd, op, "output_size")) {
                if (v < 1) throw py::value_error(prefix(op, "output_size") + "must be >= 1 in every dim");
                full.push_back(static_cast<py::ssize_t>(v));
            }
            int64_t planes, pooled, full_size;
            index_geometry(shape_of(x), full, op, "x", "output_size", &planes, &pooled, &full_size);
            FloatArray y = float_output(out, full, {&x}, op);
            const float* px = x.data();
            const int64_t* pi = idx.data();
            float* py_ = y.mutable_data();
            call_engine([&] { return max_unpool_forward(planes, full_size, pooled, px, pi, py_); });
            return y;
        },
        py::arg("x"), py::arg("indices"), py::arg("output_size"), py::arg("out") = py::none(),
        "Max unpooling: zeros of (N, C, *output_size) with x written at its indices.");

    m.def(
        "max_unpool_backward",
        [](const py::handle& grad_obj, const py::handle& indices_obj, const py::object& out) {
            const char* op = "max_unpool_backward";
            FloatArray grad = require_float32(grad_obj, op, "grad_out");
            IndexArray idx = require_int64(indices_obj, op, "indices");
            int64_t planes, pooled, full_size;
            index_geometry(shape_of(idx), shape_of(grad), op, "indices", "grad_out", &planes,
                           &pooled, &full_size);
            FloatArray gx = float_output(out, shape_of(idx), {&grad}, op);
            const float* pg = grad.data();
            const int64_t* pi = idx.data();
            float* po = gx.mutable_data();
            call_engine([&] { return max_unpool_backward(planes, full_size, pooled, pg, pi, po); });
            return gx;
        },
        py::arg("grad_out"), py::arg("indices"), py::arg("out") = py::none(),
        "Gradient of max unpooling: grad_out gathered at the indices (shape of indices).");
}

}  // namespace convengine::bindings
