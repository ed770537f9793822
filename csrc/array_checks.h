// How arrays enter the engine: checks, output allocation, GIL release, status to exception.
//
// Every binding goes through these helpers, so a direct call into convengine._C with the wrong
// type, dtype, layout or shape raises TypeError/ValueError instead of reaching a kernel. The
// engine only ever sees C-contiguous, aligned float32 buffers.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace convengine::bindings {

namespace py = pybind11;

using FloatArray = py::array_t<float, py::array::c_style>;

// "(2, 3)" for error messages.
std::string shape_string(const py::array& a);

// Returns `obj` as a C-contiguous, aligned float32 array without copying it, or raises:
// TypeError when it is not a numpy.ndarray or not float32, ValueError when it is not
// C-contiguous (a transposed, sliced or negative-stride view) or misaligned.
// `op` and `arg` name the operation and argument in the message.
FloatArray require_float32(const py::handle& obj, const char* op, const char* arg);

// As require_float32, and also writeable, for outputs the caller provides.
FloatArray require_writeable_float32(const py::handle& obj, const char* op, const char* arg);

// Raises ValueError unless `a` and `b` have the same shape.
void require_same_shape(const py::array& a, const char* arg_a, const py::array& b,
                        const char* arg_b, const char* op);

// Raises ValueError when `out` overlaps `in` without being exactly the same buffer: kernels may
// write in place, but a shifted overlap would read values they already overwrote.
void require_no_partial_overlap(const py::array& out, const py::array& in, const char* op);

// A new uninitialised float32 array of the given shape.
FloatArray empty_like(const py::array& like);

// The output of an element-wise kernel: `out` validated (float32, writeable, the shape of
// `like`, no partial overlap with any input), or a new array when `out` is None.
FloatArray output_for(const py::object& out, const FloatArray& like,
                      std::initializer_list<const FloatArray*> inputs, const char* op);

// Raises the Python exception that matches a failed engine status.
void raise_if_error(const Status& status);

// Calls fn() with the GIL released and raises if the returned Status is an error. The arrays
// the kernel reads stay alive: the caller holds references to them for the whole call.
template <typename Fn>
void call_engine(Fn&& fn) {
    Status status;
    {
        py::gil_scoped_release release;
        status = std::forward<Fn>(fn)();
    }
    raise_if_error(status);
}

}  // namespace convengine::bindings
