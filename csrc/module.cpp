// convengine._C: the private extension module. Importing it picks the kernel variant once.
#include "bindings.h"

PYBIND11_MODULE(_C, m) {
    m.doc() = "convengine's compiled kernels (private: use the convengine package).";
    convengine::bindings::select_isa_from_environment();
    convengine::bindings::bind_runtime(m);
    convengine::bindings::bind_elementwise(m);
}
