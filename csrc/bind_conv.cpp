// Convolution and transposed convolution, 1d/2d/3d, float32, channels-first; the workspace cap.
//
// Every function takes the spatial parameters as sequences of one int per spatial dim (the
// Python layer expands ints and 'same'/'valid'), checks every array's dtype, layout and shape
// against them, allocates or validates the output, and runs the engine with the GIL released.
// A direct call with inconsistent shapes raises ValueError/TypeError; it never reaches a kernel.
#include <pybind11/stl.h>

#include <sstream>
#include <string>
#include <vector>

#include "array_checks.h"
#include "bindings.h"
#include "conv/conv.h"
#include "core/workspace.h"

namespace convengine::bindings {

namespace {

using Ints = std::vector<int64_t>;

std::string ints_string(const Ints& v) {
    std::ostringstream s;
    s << "(";
    for (size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
    if (v.size() == 1) s << ",";
    s << ")";
    return s.str();
}

Ints shape_of(const py::array& a) {
    Ints s;
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s.push_back(static_cast<int64_t>(a.shape(i)));
    return s;
}

[[noreturn]] void fail(const std::string& op, const std::string& msg) {
    throw py::value_error(op + ": " + msg);
}

// Number of spatial dims of an (N, C, *spatial) array: 1, 2 or 3.
int spatial_dims(const Ints& shape, const std::string& op, const char* arg) {
    if (shape.size() < 3 || shape.size() > 5)
        fail(op, std::string("'") + arg + "' must be 3-D, 4-D or 5-D (N, C, *spatial), got shape " +
                     ints_string(shape));
    return static_cast<int>(shape.size()) - 2;
}

void check_param(const Ints& v, int nd, int64_t minimum, const std::string& op, const char* arg) {
    if (static_cast<int>(v.size()) != nd)
        fail(op, std::string("'") + arg + "' must have " + std::to_string(nd) +
                     " values (one per spatial dim), got " + ints_string(v));
    for (int64_t x : v)
        if (x < minimum)
            fail(op, std::string("'") + arg + "' must be >= " + std::to_string(minimum) +
                         " in every dim, got " + ints_string(v));
}

struct Spatial {
    int nd;
    Ints stride, padding, padding_after, dilation;
};

Spatial spatial_args(int nd, const Ints& stride, const Ints& padding,
                     const std::optional<Ints>& padding_after, const Ints& dilation,
                     const std::string& op) {
    Spatial s{nd, stride, padding, padding_after ? *padding_after : padding, dilation};
    check_param(s.stride, nd, 1, op, "stride");
    check_param(s.padding, nd, 0, op, "padding");
    check_param(s.padding_after, nd, 0, op, "padding_after");
    check_param(s.dilation, nd, 1, op, "dilation");
    return s;
}

// Fills the spatial fields of p (trailing dims; leading unused dims stay 1 / 0).
void put_spatial(ConvParams& p, const Spatial& s, const Ints& in, const Ints& out,
                 const Ints& kernel) {
    const int off = 3 - s.nd;
    for (int i = 0; i < s.nd; ++i) {
        p.in[off + i] = in[i];
        p.out[off + i] = out[i];
        p.kernel[off + i] = kernel[i];
        p.stride[off + i] = s.stride[i];
        p.dilation[off + i] = s.dilation[i];
        p.pad[off + i] = s.padding[i];
    }
}

void check_groups(int64_t groups, const std::string& op) {
    if (groups < 1) fail(op, "'groups' must be >= 1, got " + std::to_string(groups));
}

// A convolution's geometry from x's shape (N, C, *in) and w's shape (OC, C/G, *k).
struct ConvSetup {
    ConvParams params;
    Ints out_shape;  // (N, OC, *out)
};

ConvSetup conv_setup(const Ints& x_shape, const Ints& w_shape, const Spatial& s, int64_t groups,
                     const std::string& op, const char* x_arg, const char* w_arg) {
    const int nd = s.nd;
    if (static_cast<int>(w_shape.size()) != nd + 2)
        fail(op, std::string("'") + w_arg + "' must be " + std::to_string(nd + 2) +
                     "-D (OC, C/groups, *kernel) to match '" + x_arg + "' of shape " +
                     ints_string(x_shape) + ", got shape " + ints_string(w_shape));
    check_groups(groups, op);
    const int64_t N = x_shape[0], C = x_shape[1], OC = w_shape[0];
    if (C < 1) fail(op, std::string("'") + x_arg + "' must have at least one channel, got shape " + ints_string(x_shape));
    if (C % groups != 0)
        fail(op, "groups=" + std::to_string(groups) + " must divide the input channels C=" +
                     std::to_string(C));
    if (OC < 1 || OC % groups != 0)
        fail(op, "groups=" + std::to_string(groups) + " must divide the output channels OC=" +
                     std::to_string(OC) + " (" + w_arg + " shape " + ints_string(w_shape) + ")");
    if (w_shape[1] * groups != C)
        fail(op, std::string("channel mismatch: '") + w_arg + "' must have shape (" +
                     std::to_string(OC) + ", " + std::to_string(C / groups) +
                     ", *kernel) for input channels C=" + std::to_string(C) + " and groups=" +
                     std::to_string(groups) + ", got " + ints_string(w_shape));
    Ints in(x_shape.begin() + 2, x_shape.end()), kernel(w_shape.begin() + 2, w_shape.end());
    for (int64_t k : kernel)
        if (k < 1) fail(op, std::string("kernel size must be >= 1 in every dim, got '") + w_arg + "' shape " + ints_string(w_shape));
    for (int64_t v : in)
        if (v < 1) fail(op, std::string("'") + x_arg + "' spatial sizes must be >= 1, got shape " + ints_string(x_shape));
    Ints out;
    for (int i = 0; i < nd; ++i) {
        const int64_t span = in[i] + s.padding[i] + s.padding_after[i] - s.dilation[i] * (kernel[i] - 1) - 1;
        const int64_t o = span < 0 ? 0 : span / s.stride[i] + 1;
        out.push_back(o);
    }
    for (int64_t o : out)
        if (o < 1)
            fail(op, "output size would be " + ints_string(out) + " (must be >= 1 in every dim): input spatial size " +
                         ints_string(in) + " with padding " + ints_string(s.padding) + "/" +
                         ints_string(s.padding_after) + " is too small for kernel " +
                         ints_string(kernel) + " with dilation " + ints_string(s.dilation));
    ConvSetup r;
    r.params.batch = N;
    r.params.in_channels = C;
    r.params.out_channels = OC;
    r.params.groups = groups;
    put_spatial(r.params, s, in, out, kernel);
    r.out_shape = {N, OC};
    r.out_shape.insert(r.out_shape.end(), out.begin(), out.end());
    if (Status st = check_conv_params(r.params); !st.ok()) fail(op, st.message);
    return r;
}

// A transposed convolution's geometry from x (N, C_in, *in), w (C_in, C_out/G, *k) and
// output_padding; params describe the convolution it is the adjoint of (conv input = our output).
ConvSetup transpose_setup(const Ints& x_shape, const Ints& w_shape, const Spatial& s,
                          const Ints& output_padding, int64_t groups, const std::string& op,
                          const char* x_arg, const char* w_arg) {
    const int nd = s.nd;
    if (static_cast<int>(w_shape.size()) != nd + 2)
        fail(op, std::string("'") + w_arg + "' must be " + std::to_string(nd + 2) +
                     "-D (C_in, C_out/groups, *kernel) to match '" + x_arg + "' of shape " +
                     ints_string(x_shape) + ", got shape " + ints_string(w_shape));
    check_groups(groups, op);
    check_param(output_padding, nd, 0, op, "output_padding");
    const int64_t N = x_shape[0], Cin = x_shape[1];
    if (Cin < 1 || Cin % groups != 0)
        fail(op, "groups=" + std::to_string(groups) + " must divide the input channels C_in=" +
                     std::to_string(Cin));
    if (w_shape[0] != Cin)
        fail(op, std::string("channel mismatch: '") + w_arg + "' must have shape (" +
                     std::to_string(Cin) + ", C_out/groups, *kernel) for input channels C_in=" +
                     std::to_string(Cin) + ", got " + ints_string(w_shape));
    if (w_shape[1] < 1) fail(op, std::string("'") + w_arg + "' must have C_out/groups >= 1, got " + ints_string(w_shape));
    Ints in(x_shape.begin() + 2, x_shape.end()), kernel(w_shape.begin() + 2, w_shape.end());
    for (int64_t k : kernel)
        if (k < 1) fail(op, std::string("kernel size must be >= 1 in every dim, got '") + w_arg + "' shape " + ints_string(w_shape));
    for (int64_t v : in)
        if (v < 1) fail(op, std::string("'") + x_arg + "' spatial sizes must be >= 1, got shape " + ints_string(x_shape));
    Ints out;
    for (int i = 0; i < nd; ++i)
        out.push_back((in[i] - 1) * s.stride[i] - s.padding[i] - s.padding_after[i] +
                      s.dilation[i] * (kernel[i] - 1) + output_padding[i] + 1);
    for (int64_t o : out)
        if (o < 1)
            fail(op, "output size would be " + ints_string(out) + " (must be >= 1 in every dim) for input spatial size " +
                         ints_string(in) + ", kernel " + ints_string(kernel) + ", stride " +
                         ints_string(s.stride) + ", padding " + ints_string(s.padding) +
                         ", dilation " + ints_string(s.dilation) + ", output_padding " +
                         ints_string(output_padding));
    ConvSetup r;
    r.params.batch = N;
    r.params.in_channels = w_shape[1] * groups;  // the conv's input = our output
    r.params.out_channels = Cin;
    r.params.groups = groups;
    put_spatial(r.params, s, out, in, kernel);
    r.out_shape = {N, w_shape[1] * groups};
    r.out_shape.insert(r.out_shape.end(), out.begin(), out.end());
    if (Status st = check_conv_params(r.params); !st.ok()) fail(op, st.message);
    return r;
}

void require_shape(const py::array& a, const Ints& expected, const std::string& op, const char* arg) {
    if (shape_of(a) != expected)
        fail(op, std::string("'") + arg + "' must have shape " + ints_string(expected) + ", got " +
                     ints_string(shape_of(a)));
}

Ints as_shape(const Ints& v, const std::string& op, const char* arg) {
    for (int64_t x : v)
        if (x < 0) fail(op, std::string("'") + arg + "' must not have negative sizes, got " + ints_string(v));
    return v;
}

// The output array: `out` checked (float32, C-contiguous, writeable, shape, no overlap with
// inputs), or a new one.
FloatArray make_output(const py::object& out, const Ints& shape, std::initializer_list<const py::array*> inputs,
                       const std::string& op) {
    if (out.is_none()) {
        std::vector<py::ssize_t> dims(shape.begin(), shape.end());
        return FloatArray(dims);
    }
    FloatArray result = require_writeable_float32(out, op.c_str(), "out");
    require_shape(result, shape, op, "out");
    for (const py::array* in : inputs) {
        // Outputs are written while inputs are still read: no overlap at all.
        const auto ob = reinterpret_cast<std::uintptr_t>(result.data());
        const auto oe = ob + static_cast<std::uintptr_t>(result.nbytes());
        const auto ib = reinterpret_cast<std::uintptr_t>(in->data());
        const auto ie = ib + static_cast<std::uintptr_t>(in->nbytes());
        if (result.nbytes() > 0 && in->nbytes() > 0 && ob < ie && ib < oe)
            fail(op, "'out' must not overlap an input");
    }
    return result;
}

std::optional<FloatArray> optional_bias(const py::object& bias, int64_t channels, const std::string& op) {
    if (bias.is_none()) return std::nullopt;
    FloatArray b = require_float32(bias, op.c_str(), "bias");
    require_shape(b, {channels}, op, "bias");
    return b;
}

}  // namespace

void bind_conv(py::module_& m) {
    using OptInts = std::optional<Ints>;

    m.def("conv_forward",
          [](const py::handle& x_obj, const py::handle& w_obj, const py::object& bias_obj,
             const Ints& stride, const Ints& padding, const Ints& dilation, int64_t groups,
             bool relu, const OptInts& padding_after, const py::object& out) {
              const std::string op = "conv_forward";
              FloatArray x = require_float32(x_obj, op.c_str(), "x");
              FloatArray w = require_float32(w_obj, op.c_str(), "w");
              const int nd = spatial_dims(shape_of(x), op, "x");
              const Spatial s = spatial_args(nd, stride, padding, padding_after, dilation, op);
              const ConvSetup cs = conv_setup(shape_of(x), shape_of(w), s, groups, op, "x", "w");
              auto bias = optional_bias(bias_obj, cs.params.out_channels, op);
              FloatArray y = make_output(out, cs.out_shape, {&x, &w}, op);
              const float* px = x.data();
              const float* pw = w.data();
              const float* pb = bias ? bias->data() : nullptr;
              float* py_ = y.mutable_data();
              call_engine([&] { return conv_forward(cs.params, px, pw, pb, relu, py_); });
              return y;
          },
          py::arg("x"), py::arg("w"), py::arg("bias") = py::none(), py::arg("stride"),
          py::arg("padding"), py::arg("dilation"), py::arg("groups") = 1,
          py::arg("relu") = false, py::arg("padding_after") = py::none(),
          py::arg("out") = py::none(),
          "y = relu?(conv(x, w) + bias): x (N, C, *in), w (OC, C/groups, *k) -> (N, OC, *out).\n"
          "stride/padding/dilation: one int per spatial dim; padding is the padding before each\n"
          "dim, padding_after the padding after (default: the same).");

    m.def("conv_backward_input",
          [](const py::handle& dy_obj, const py::handle& w_obj, const Ints& input_shape,
             const Ints& stride, const Ints& padding, const Ints& dilation, int64_t groups,
             const OptInts& padding_after, const py::object& out) {
              const std::string op = "conv_backward_input";
              FloatArray dy = require_float32(dy_obj, op.c_str(), "grad_out");
              FloatArray w = require_float32(w_obj, op.c_str(), "w");
              const Ints xs = as_shape(input_shape, op, "input_shape");
              const int nd = spatial_dims(xs, op, "input_shape");
              const Spatial s = spatial_args(nd, stride, padding, padding_after, dilation, op);
              const ConvSetup cs = conv_setup(xs, shape_of(w), s, groups, op, "input_shape", "w");
              require_shape(dy, cs.out_shape, op, "grad_out");
              FloatArray dx = make_output(out, xs, {&dy, &w}, op);
              const float* pdy = dy.data();
              const float* pw = w.data();
              float* pdx = dx.mutable_data();
              call_engine([&] { return conv_backward_input(cs.params, pdy, pw, nullptr, pdx); });
              return dx;
          },
          py::arg("grad_out"), py::arg("w"), py::arg("input_shape"), py::arg("stride"),
          py::arg("padding"), py::arg("dilation"), py::arg("groups") = 1,
          py::arg("padding_after") = py::none(), py::arg("out") = py::none(),
          "Gradient of conv_forward with respect to x, of shape input_shape.");

    m.def("conv_backward_weight",
          [](const py::handle& dy_obj, const py::handle& x_obj, const Ints& weight_shape,
             const Ints& stride, const Ints& padding, const Ints& dilation, int64_t groups,
             const OptInts& padding_after, const py::object& out) {
              const std::string op = "conv_backward_weight";
              FloatArray dy = require_float32(dy_obj, op.c_str(), "grad_out");
              FloatArray x = require_float32(x_obj, op.c_str(), "x");
              const Ints ws = as_shape(weight_shape, op, "weight_shape");
              const int nd = spatial_dims(shape_of(x), op, "x");
              const Spatial s = spatial_args(nd, stride, padding, padding_after, dilation, op);
              const ConvSetup cs = conv_setup(shape_of(x), ws, s, groups, op, "x", "weight_shape");
              require_shape(dy, cs.out_shape, op, "grad_out");
              FloatArray dw = make_output(out, ws, {&dy, &x}, op);
              const float* pdy = dy.data();
              const float* px = x.data();
              float* pdw = dw.mutable_data();
              call_engine([&] { return conv_backward_weight(cs.params, pdy, px, pdw); });
              return dw;
          },
          py::arg("grad_out"), py::arg("x"), py::arg("weight_shape"), py::arg("stride"),
          py::arg("padding"), py::arg("dilation"), py::arg("groups") = 1,
          py::arg("padding_after") = py::none(), py::arg("out") = py::none(),
          "Gradient of conv_forward with respect to w, of shape weight_shape.");

    m.def("conv_backward_bias",
          [](const py::handle& dy_obj, const py::object& out) {
              const std::string op = "conv_backward_bias";
              FloatArray dy = require_float32(dy_obj, op.c_str(), "grad_out");
              const Ints shape = shape_of(dy);
              if (shape.size() < 2)
                  fail(op, "'grad_out' must be at least 2-D (N, C, ...), got shape " + ints_string(shape));
              int64_t plane = 1;
              for (size_t i = 2; i < shape.size(); ++i) plane *= shape[i];
              if (shape[1] < 1) fail(op, "'grad_out' must have at least one channel");
              FloatArray db = make_output(out, {shape[1]}, {&dy}, op);
              const float* pdy = dy.data();
              float* pdb = db.mutable_data();
              const int64_t n = shape[0], c = shape[1];
              call_engine([&] { return conv_backward_bias(n, c, plane, pdy, pdb); });
              return db;
          },
          py::arg("grad_out"), py::arg("out") = py::none(),
          "Bias gradient: grad_out (N, C, ...) summed over every axis but 1 (float64 partials).");

    m.def("conv_transpose_forward",
          [](const py::handle& x_obj, const py::handle& w_obj, const py::object& bias_obj,
             const Ints& stride, const Ints& padding, const Ints& output_padding,
             const Ints& dilation, int64_t groups, bool relu, const py::object& out) {
              const std::string op = "conv_transpose_forward";
              FloatArray x = require_float32(x_obj, op.c_str(), "x");
              FloatArray w = require_float32(w_obj, op.c_str(), "w");
              const int nd = spatial_dims(shape_of(x), op, "x");
              const Spatial s = spatial_args(nd, stride, padding, std::nullopt, dilation, op);
              const ConvSetup cs = transpose_setup(shape_of(x), shape_of(w), s, output_padding,
                                                   groups, op, "x", "w");
              auto bias = optional_bias(bias_obj, cs.params.in_channels, op);
              FloatArray y = make_output(out, cs.out_shape, {&x, &w}, op);
              const float* px = x.data();
              const float* pw = w.data();
              const float* pb = bias ? bias->data() : nullptr;
              float* py_ = y.mutable_data();
              call_engine([&] { return conv_transpose_forward(cs.params, px, pw, pb, relu, py_); });
              return y;
          },
          py::arg("x"), py::arg("w"), py::arg("bias") = py::none(), py::arg("stride"),
          py::arg("padding"), py::arg("output_padding"), py::arg("dilation"),
          py::arg("groups") = 1, py::arg("relu") = false, py::arg("out") = py::none(),
          "Transposed convolution: x (N, C_in, *in), w (C_in, C_out/groups, *k) -> (N, C_out, *out),\n"
          "out = (in-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1.");

    m.def("conv_transpose_backward_input",
          [](const py::handle& dy_obj, const py::handle& w_obj, const Ints& input_shape,
             const Ints& stride, const Ints& padding, const Ints& output_padding,
             const Ints& dilation, int64_t groups, const py::object& out) {
              const std::string op = "conv_transpose_backward_input";
              FloatArray dy = require_float32(dy_obj, op.c_str(), "grad_out");
              FloatArray w = require_float32(w_obj, op.c_str(), "w");
              const Ints xs = as_shape(input_shape, op, "input_shape");
              const int nd = spatial_dims(xs, op, "input_shape");
              const Spatial s = spatial_args(nd, stride, padding, std::nullopt, dilation, op);
              const ConvSetup cs = transpose_setup(xs, shape_of(w), s, output_padding, groups, op,
                                                   "input_shape", "w");
              require_shape(dy, cs.out_shape, op, "grad_out");
              FloatArray dx = make_output(out, xs, {&dy, &w}, op);
              const float* pdy = dy.data();
              const float* pw = w.data();
              float* pdx = dx.mutable_data();
              call_engine([&] { return conv_transpose_backward_input(cs.params, pdy, pw, pdx); });
              return dx;
          },
          py::arg("grad_out"), py::arg("w"), py::arg("input_shape"), py::arg("stride"),
          py::arg("padding"), py::arg("output_padding"), py::arg("dilation"),
          py::arg("groups") = 1, py::arg("out") = py::none(),
          "Gradient of conv_transpose_forward with respect to x.");

    m.def("conv_transpose_backward_weight",
          [](const py::handle& dy_obj, const py::handle& x_obj, const Ints& weight_shape,
             const Ints& stride, const Ints& padding, const Ints& output_padding,
             const Ints& dilation, int64_t groups, const py::object& out) {
              const std::string op = "conv_transpose_backward_weight";
              FloatArray dy = require_float32(dy_obj, op.c_str(), "grad_out");
              FloatArray x = require_float32(x_obj, op.c_str(), "x");
              const Ints ws = as_shape(weight_shape, op, "weight_shape");
              const int nd = spatial_dims(shape_of(x), op, "x");
              const Spatial s = spatial_args(nd, stride, padding, std::nullopt, dilation, op);
              const ConvSetup cs = transpose_setup(shape_of(x), ws, s, output_padding, groups, op,
                                                   "x", "weight_shape");
              require_shape(dy, cs.out_shape, op, "grad_out");
              FloatArray dw = make_output(out, ws, {&dy, &x}, op);
              const float* pdy = dy.data();
              const float* px = x.data();
              float* pdw = dw.mutable_data();
              call_engine([&] { return conv_transpose_backward_weight(cs.params, pdy, px, pdw); });
              return dw;
          },
          py::arg("grad_out"), py::arg("x"), py::arg("weight_shape"), py::arg("stride"),
          py::arg("padding"), py::arg("output_padding"), py::arg("dilation"),
          py::arg("groups") = 1, py::arg("out") = py::none(),
          "Gradient of conv_transpose_forward with respect to w.");

    m.def("conv_last_algorithm", [] { return std::string(conv_last_algorithm()); },
          "The path the last convolution pass called on this thread took (tests, benchmarks).");

    m.def("set_workspace_limit",
          [](int64_t bytes) { raise_if_error(set_workspace_limit(bytes)); }, py::arg("bytes"),
          "Caps each thread's persistent convolution workspace at `bytes` (default 64 MiB).");
    m.def("get_workspace_limit", &workspace_limit);
    m.def("workspace_peak_bytes", &workspace_peak_bytes,
          "Most bytes all convolution workspaces held together since the last reset.");
    m.def("workspace_bytes_held", &workspace_bytes_held);
    m.def("reset_workspace_peak", &reset_workspace_peak);
    m.def("release_workspace", &release_thread_workspace,
          "Frees the calling thread's workspace buffer.");
}

}  // namespace convengine::bindings
