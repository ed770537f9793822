// Element-wise and reduction kernels: float32, C-contiguous, equal shapes (broadcasting and
// other dtypes are handled in Python before these are called).
#include "array_checks.h"
#include "bindings.h"
#include "elementwise/elementwise.h"
#include "elementwise_binders.h"

namespace convengine::bindings {

namespace {

void bind_binary(py::module_& m, const char* name, BinaryOp op, const char* doc) {
    m.def(name,
          [name, op](const py::handle& a_obj, const py::handle& b_obj, const py::object& out) {
              FloatArray a = require_float32(a_obj, name, "a");
              FloatArray b = require_float32(b_obj, name, "b");
              require_same_shape(a, "a", b, "b", name);
              FloatArray result = output_for(out, a, {&a, &b}, name);
              const float* pa = a.data();
              const float* pb = b.data();
              float* po = result.mutable_data();
              const int64_t n = a.size();
              call_engine([&] { return binary(op, pa, pb, po, n); });
              return result;
          },
          py::arg("a"), py::arg("b"), py::arg("out") = py::none(), doc);
}

}  // namespace

void bind_elementwise(py::module_& m) {
    bind_binary(m, "add", BinaryOp::add, "out = a + b (float32, equal shapes).");
    bind_binary(m, "sub", BinaryOp::sub, "out = a - b (float32, equal shapes).");
    bind_binary(m, "mul", BinaryOp::mul, "out = a * b (float32, equal shapes).");
    bind_binary(m, "div", BinaryOp::div, "out = a / b (float32, equal shapes).");
    bind_forward(m, "relu", relu, "out = max(x, 0); NaN stays NaN.");
    bind_forward(m, "exp", convengine::exp, "out = exp(x), within 2 ulp.");

    bind_backward(m, "relu_backward", "x", relu_backward, "out = grad where x > 0, else 0.");

    m.def("axpy",
          [](float alpha, const py::handle& x_obj, const py::handle& y_obj) {
              FloatArray x = require_float32(x_obj, "axpy", "x");
              FloatArray y = require_writeable_float32(y_obj, "axpy", "y");
              require_same_shape(x, "x", y, "y", "axpy");
              require_no_partial_overlap(y, x, "axpy");
              const float* px = x.data();
              float* py_ = y.mutable_data();
              const int64_t n = x.size();
              call_engine([&] { return axpy(alpha, px, py_, n); });
          },
          py::arg("alpha"), py::arg("x"), py::arg("y"), "y += alpha * x, in place.");

    m.def("sum",
          [](const py::handle& x_obj) {
              FloatArray x = require_float32(x_obj, "sum", "x");
              const float* px = x.data();
              const int64_t n = x.size();
              double total = 0.0;
              call_engine([&] { return sum(px, n, &total); });
              return total;
          },
          py::arg("x"), "Sum of all elements, accumulated in float64.");

    m.def("sum_squared_deviation",
          [](const py::handle& x_obj, double mean) {
              FloatArray x = require_float32(x_obj, "sum_squared_deviation", "x");
              const float* px = x.data();
              const int64_t n = x.size();
              double total = 0.0;
              call_engine([&] { return sum_squared_deviation(px, n, mean, &total); });
              return total;
          },
          py::arg("x"), py::arg("mean"), "Sum of (x - mean)**2, accumulated in float64.");

    m.def("max",
          [](const py::handle& x_obj) {
              FloatArray x = require_float32(x_obj, "max", "x");
              const float* px = x.data();
              const int64_t n = x.size();
              float best = 0.0f;
              call_engine([&] { return convengine::max(px, n, &best); });
              return best;
          },
          py::arg("x"), "Largest element (NaN if any is NaN); the input must not be empty.");

    m.def("min",
          [](const py::handle& x_obj) {
              FloatArray x = require_float32(x_obj, "min", "x");
              const float* px = x.data();
              const int64_t n = x.size();
              float best = 0.0f;
              call_engine([&] { return convengine::min(px, n, &best); });
              return best;
          },
          py::arg("x"), "Smallest element (NaN if any is NaN); the input must not be empty.");
}

}  // namespace convengine::bindings
