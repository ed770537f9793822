// One bind_<family>() per op family; module.cpp calls them all.
#pragma once

#include <pybind11/pybind11.h>

namespace convengine::bindings {

namespace py = pybind11;

void bind_runtime(py::module_& m);
void bind_elementwise(py::module_& m);
void bind_conv(py::module_& m);
void bind_gemm(py::module_& m);
void bind_pool(py::module_& m);
void bind_activation(py::module_& m);

}  // namespace convengine::bindings
