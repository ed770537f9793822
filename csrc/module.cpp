// convengine._C: the private extension module. Its kernel table starts on the best variant the
// CPU supports; the package applies CONVENGINE_ISA right after importing it.
#include "bindings.h"

PYBIND11_MODULE(_C, m) {
    m.doc() = "convengine's compiled kernels (private: use the convengine package).";
    convengine::bindings::bind_runtime(m);
    convengine::bindings::bind_elementwise(m);
    convengine::bindings::bind_conv(m);
    convengine::bindings::bind_gemm(m);
    convengine::bindings::bind_pool(m);
    convengine::bindings::bind_activation(m);
}
