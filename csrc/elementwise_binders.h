// Binders for element-wise kernels (one output the shape of the input; no parameters): the
// array checks, the output (given or allocated), the GIL released around the kernel. Shared by
// bind_elementwise.cpp and bind_activation.cpp.
#pragma once

#include <cstdint>

#include "array_checks.h"

namespace convengine::bindings {

// The array work every element-wise binder shares: checks x, allocates `out` (or checks the
// one given) and runs kernel(x, out, n) without the GIL; kernel returns the engine's Status.
template <typename Kernel>
FloatArray run_forward(const py::handle& x_obj, const py::object& out, const char* op,
                       Kernel kernel) {
    FloatArray x = require_float32(x_obj, op, "x");
    FloatArray result = output_for(out, x, {&x}, op);
    const float* px = x.data();
    float* po = result.mutable_data();
    const int64_t n = x.size();
    call_engine([&] { return kernel(px, po, n); });
    return result;
}

// Likewise for a backward pass: kernel(grad, saved, out, n), `saved` being x or y.
template <typename Kernel>
FloatArray run_backward(const py::handle& grad_obj, const py::handle& saved_obj,
                        const py::object& out, const char* op, const char* saved_name,
                        Kernel kernel) {
    FloatArray grad = require_float32(grad_obj, op, "grad");
    FloatArray saved = require_float32(saved_obj, op, saved_name);
    require_same_shape(grad, "grad", saved, saved_name, op);
    FloatArray result = output_for(out, saved, {&grad, &saved}, op);
    const float* pg = grad.data();
    const float* ps = saved.data();
    float* po = result.mutable_data();
    const int64_t n = saved.size();
    call_engine([&] { return kernel(pg, ps, po, n); });
    return result;
}

// Binders for the kernels without a parameter: out = kernel(x), out = kernel(grad, saved).
template <typename Kernel>
void bind_forward(py::module_& m, const char* name, Kernel kernel, const char* doc) {
    m.def(
        name,
        [name, kernel](const py::handle& x, const py::object& out) {
            return run_forward(x, out, name, kernel);
        },
        py::arg("x"), py::arg("out") = py::none(), doc);
}

template <typename Kernel>
void bind_backward(py::module_& m, const char* name, const char* saved_name, Kernel kernel,
                   const char* doc) {
    m.def(
        name,
        [name, saved_name, kernel](const py::handle& grad, const py::handle& saved,
                                   const py::object& out) {
            return run_backward(grad, saved, out, name, saved_name, kernel);
        },
        py::arg("grad"), py::arg(saved_name), py::arg("out") = py::none(), doc);
}

}  // namespace convengine::bindings
