// Activation kernels, forward and backward: float32, C-contiguous, equal shapes. `out` may be
// an input itself (in place) but must not partially overlap one.
#include <cstdint>
#include <initializer_list>
#include <string>

#include "activation/activation.h"
#include "array_checks.h"
#include "bindings.h"
#include "elementwise_binders.h"

namespace convengine::bindings {

namespace {

GeluApproximation parse_approximate(const std::string& name, const char* op) {
    if (name == "none") return GeluApproximation::none;
    if (name == "tanh") return GeluApproximation::tanh;
    throw py::value_error(std::string(op) + ": argument 'approximate' must be 'none' or 'tanh', got '" +
                          name + "'");
}

// (outer, dim, inner) of a shape for a softmax along `dim` (negative counts from the end; a
// 0-d array is one softmax of one element, with dim 0 or -1, as in PyTorch).
void softmax_split(const py::array& a, int64_t dim, const char* op, int64_t* outer,
                   int64_t* size, int64_t* inner) {
    const int64_t ndim = a.ndim();
    const int64_t rank = ndim > 0 ? ndim : 1;
    if (dim < -rank || dim >= rank)
        throw py::value_error(std::string(op) + ": argument 'dim' is " + std::to_string(dim) +
                              ", out of range for an array of " + std::to_string(ndim) +
                              " dimensions");
    if (dim < 0) dim += rank;
    *outer = *size = *inner = 1;
    for (int64_t i = 0; i < ndim; ++i) {
        if (i < dim) *outer *= a.shape(i);
        else if (i == dim) *size = a.shape(i);
        else *inner *= a.shape(i);
    }
}

void bind_softmax(py::module_& m, const char* name, bool log, const char* doc) {
    m.def(
        name,
        [name, log](const py::handle& x_obj, int64_t dim, const py::object& out) {
            FloatArray x = require_float32(x_obj, name, "x");
            int64_t outer, size, inner;
            softmax_split(x, dim, name, &outer, &size, &inner);
            FloatArray result = output_for(out, x, {&x}, name);
            const float* px = x.data();
            float* po = result.mutable_data();
            call_engine([&] { return softmax(px, po, outer, size, inner, log); });
            return result;
        },
        py::arg("x"), py::arg("dim"), py::arg("out") = py::none(), doc);
}

void bind_softmax_backward(py::module_& m, const char* name, bool log, const char* doc) {
    m.def(
        name,
        [name, log](const py::handle& grad_obj, const py::handle& y_obj, int64_t dim,
                    const py::object& out) {
            FloatArray grad = require_float32(grad_obj, name, "grad");
            FloatArray y = require_float32(y_obj, name, "y");
            require_same_shape(grad, "grad", y, "y", name);
            int64_t outer, size, inner;
            softmax_split(y, dim, name, &outer, &size, &inner);
            FloatArray result = output_for(out, y, {&grad, &y}, name);
            const float* pg = grad.data();
            const float* py_ = y.data();
            float* po = result.mutable_data();
            call_engine([&] { return softmax_backward(pg, py_, po, outer, size, inner, log); });
            return result;
        },
        py::arg("grad"), py::arg("y"), py::arg("dim"), py::arg("out") = py::none(), doc);
}

}  // namespace

void bind_activation(py::module_& m) {
    m.def(
        "leaky_relu",
        [](const py::handle& x, float slope, const py::object& out) {
            return run_forward(x, out, "leaky_relu", [slope](const float* px, float* po,
                                                             int64_t n) {
                return leaky_relu(px, po, n, slope);
            });
        },
        py::arg("x"), py::arg("negative_slope") = 0.01f, py::arg("out") = py::none(),
        "out = x > 0 ? x : negative_slope * x.");
    m.def(
        "leaky_relu_backward",
        [](const py::handle& grad, const py::handle& x, float slope, const py::object& out) {
            return run_backward(grad, x, out, "leaky_relu_backward", "x",
                                [slope](const float* pg, const float* px, float* po, int64_t n) {
                                    return leaky_relu_backward(pg, px, po, n, slope);
                                });
        },
        py::arg("grad"), py::arg("x"), py::arg("negative_slope") = 0.01f,
        py::arg("out") = py::none(), "out = x > 0 ? grad : negative_slope * grad.");
    m.def(
        "elu",
        [](const py::handle& x, float alpha, const py::object& out) {
            return run_forward(x, out, "elu", [alpha](const float* px, float* po, int64_t n) {
                return elu(px, po, n, alpha);
            });
        },
        py::arg("x"), py::arg("alpha") = 1.0f, py::arg("out") = py::none(),
        "out = x > 0 ? x : alpha * expm1(x).");
    m.def(
        "elu_backward",
        [](const py::handle& grad, const py::handle& x, float alpha, const py::object& out) {
            return run_backward(grad, x, out, "elu_backward", "x",
                                [alpha](const float* pg, const float* px, float* po, int64_t n) {
                                    return elu_backward(pg, px, po, n, alpha);
                                });
        },
        py::arg("grad"), py::arg("x"), py::arg("alpha") = 1.0f, py::arg("out") = py::none(),
        "out = x > 0 ? grad : grad * alpha * exp(x).");
    m.def(
        "gelu",
        [](const py::handle& x, const std::string& approximate, const py::object& out) {
            const GeluApproximation a = parse_approximate(approximate, "gelu");
            return run_forward(x, out, "gelu", [a](const float* px, float* po, int64_t n) {
                return gelu(px, po, n, a);
            });
        },
        py::arg("x"), py::arg("approximate") = "none", py::arg("out") = py::none(),
        "GELU: x * Phi(x) (approximate='none') or its tanh approximation ('tanh').");
    m.def(
        "gelu_backward",
        [](const py::handle& grad, const py::handle& x, const std::string& approximate,
           const py::object& out) {
            const GeluApproximation a = parse_approximate(approximate, "gelu_backward");
            return run_backward(grad, x, out, "gelu_backward", "x",
                                [a](const float* pg, const float* px, float* po, int64_t n) {
                                    return gelu_backward(pg, px, po, n, a);
                                });
        },
        py::arg("grad"), py::arg("x"), py::arg("approximate") = "none",
        py::arg("out") = py::none(), "Gradient of GELU with respect to its input x.");
    bind_forward(m, "sigmoid", convengine::sigmoid, "out = 1 / (1 + exp(-x)).");
    bind_backward(m, "sigmoid_backward", "y", convengine::sigmoid_backward,
                  "out = grad * y * (1 - y), y = sigmoid(x).");
    bind_forward(m, "tanh", convengine::tanh, "out = tanh(x).");
    bind_backward(m, "tanh_backward", "y", convengine::tanh_backward,
                  "out = grad * (1 - y^2), y = tanh(x).");
    bind_softmax(m, "softmax", false, "Softmax of x along dim (numerically stable).");
    bind_softmax(m, "log_softmax", true, "Log-softmax of x along dim (numerically stable).");
    bind_softmax_backward(m, "softmax_backward", false,
                          "Gradient of softmax from its output y: y * (grad - sum(grad * y)).");
    bind_softmax_backward(m, "log_softmax_backward", true,
                          "Gradient of log_softmax from its output y: grad - exp(y) * sum(grad).");
}

}  // namespace convengine::bindings
