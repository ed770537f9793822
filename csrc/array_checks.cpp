#include "array_checks.h"

#include <cstdint>
#include <sstream>

namespace convengine::bindings {

std::string shape_string(const py::array& a) {
    std::ostringstream s;
    s << "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        if (i) s << ", ";
        s << a.shape(i);
    }
    if (a.ndim() == 1) s << ",";
    s << ")";
    return s.str();
}

namespace {

std::string strides_string(const py::array& a) {
    std::ostringstream s;
    s << "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        if (i) s << ", ";
        s << a.strides(i);
    }
    if (a.ndim() == 1) s << ",";
    s << ")";
    return s.str();
}

std::string prefix(const char* op, const char* arg) {
    return std::string(op) + ": argument '" + arg + "' ";
}

}  // namespace

FloatArray require_float32(const py::handle& obj, const char* op, const char* arg) {
    if (!py::isinstance<py::array>(obj)) {
        throw py::type_error(prefix(op, arg) + "must be a numpy.ndarray, got " +
                             std::string(py::str(py::type::of(obj).attr("__name__"))));
    }
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!a.dtype().is(py::dtype::of<float>())) {
        throw py::type_error(prefix(op, arg) + "must have dtype float32, got " +
                             std::string(py::str(a.dtype())));
    }
    const auto flags = py::detail::array_proxy(a.ptr())->flags;
    if (!(flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_)) {
        throw py::value_error(prefix(op, arg) + "must be C-contiguous, got shape " +
                              shape_string(a) + " with strides " + strides_string(a) +
                              " (pass numpy.ascontiguousarray(...))");
    }
    if (!(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) {
        throw py::value_error(prefix(op, arg) + "must be aligned to 4 bytes (pass a copy)");
    }
    return py::reinterpret_borrow<FloatArray>(a);
}

FloatArray require_writeable_float32(const py::handle& obj, const char* op, const char* arg) {
    FloatArray a = require_float32(obj, op, arg);
    if (!a.writeable()) throw py::value_error(prefix(op, arg) + "must be writeable");
    return a;
}

void require_same_shape(const py::array& a, const char* arg_a, const py::array& b,
                        const char* arg_b, const char* op) {
    bool same = a.ndim() == b.ndim();
    for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == b.shape(i);
    if (!same) {
        throw py::value_error(std::string(op) + ": '" + arg_a + "' and '" + arg_b +
                              "' must have the same shape, got " + shape_string(a) + " and " +
                              shape_string(b));
    }
}

void require_no_partial_overlap(const py::array& out, const py::array& in, const char* op) {
    const auto out_begin = reinterpret_cast<std::uintptr_t>(out.data());
    const auto in_begin = reinterpret_cast<std::uintptr_t>(in.data());
    const auto out_end = out_begin + static_cast<std::uintptr_t>(out.nbytes());
    const auto in_end = in_begin + static_cast<std::uintptr_t>(in.nbytes());
    const bool overlap = out_begin < in_end && in_begin < out_end;
    if (overlap && out_begin != in_begin) {
        throw py::value_error(std::string(op) +
                              ": 'out' partially overlaps an input; pass a separate array or "
                              "the input itself");
    }
}

FloatArray empty_like(const py::array& like) {
    std::vector<py::ssize_t> shape(like.shape(), like.shape() + like.ndim());
    return FloatArray(shape);
}

FloatArray output_for(const py::object& out, const FloatArray& like,
                      std::initializer_list<const FloatArray*> inputs, const char* op) {
    if (out.is_none()) return empty_like(like);
    FloatArray result = require_writeable_float32(out, op, "out");
    require_same_shape(result, "out", like, "input", op);
    for (const FloatArray* in : inputs) require_no_partial_overlap(result, *in, op);
    return result;
}

void raise_if_error(const Status& status) {
    switch (status.code) {
        case StatusCode::ok: return;
        case StatusCode::invalid_argument: throw py::value_error(status.message);
        case StatusCode::unsupported: throw std::runtime_error(status.message);
        case StatusCode::out_of_memory: throw std::bad_alloc();
    }
    throw std::runtime_error(status.message);
}

}  // namespace convengine::bindings
