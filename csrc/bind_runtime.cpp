// Runtime controls: ISA choice, threads, OpenMP facts.
#include <string>

#include "array_checks.h"
#include "bindings.h"
#include "core/isa.h"
#include "core/kernel_table.h"
#include "core/threading.h"
#include "probe/fma_probe.h"

namespace convengine::bindings {

namespace {

std::string supported_isa_list() {
    std::string names;
    for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        if (!cpu_supports(isa)) continue;
        if (!names.empty()) names += ", ";
        names += isa_name(isa);
    }
    return names;
}

Isa parse_isa_or_raise(const std::string& name, const char* what) {
    Isa isa;
    if (!parse_isa(name.c_str(), &isa)) {
        throw py::value_error(std::string(what) + "='" + name +
                              "' is not a known ISA; expected one of ref, avx2, avx512");
    }
    if (!cpu_supports(isa)) {
        throw py::value_error(std::string(what) + "='" + name +
                              "' but this CPU does not support it; supported here: " +
                              supported_isa_list());
    }
    return isa;
}

void select_isa_or_raise(const std::string& name, const char* what) {
    raise_if_error(select_isa(parse_isa_or_raise(name, what)));
}

py::list compiled_isas() {
    py::list names;
    for (int i = 0; i < kIsaCount; ++i) names.append(isa_name(static_cast<Isa>(i)));
    return names;
}

}  // namespace

void bind_runtime(py::module_& m) {
    m.def("isa", [] { return std::string(isa_name(kernels().isa)); },
          "Name of the active kernel variant: 'ref', 'avx2' or 'avx512'.");
    m.def("compiled_isas", &compiled_isas, "Kernel variants compiled into this build.");
    m.def("cpu_supports", [](const std::string& name) {
              Isa isa;
              if (!parse_isa(name.c_str(), &isa))
                  throw py::value_error("cpu_supports: unknown ISA '" + name +
                                        "'; expected one of ref, avx2, avx512");
              return cpu_supports(isa);
          },
          py::arg("isa"), "Whether this CPU can run the named kernel variant.");
    m.def("_select_isa",
          [](const std::string& name, const std::string& source) {
              select_isa_or_raise(name, source.c_str());
          },
          py::arg("isa"), py::arg("source") = "isa",
          "Switches the active kernel variant. The package calls it once at import for "
          "CONVENGINE_ISA (source names the setting in error messages); tests use it to run "
          "every variant.");
    m.def("set_num_threads", [](int n) { raise_if_error(set_num_threads(n)); }, py::arg("n"));
    m.def("get_num_threads", &num_threads);
    m.def("fma_probe",
          [](int threads, int64_t iterations) {
              double flops = 0.0;
              call_engine([&] { return fma_probe(threads, iterations, &flops); });
              return flops;
          },
          py::arg("threads"), py::arg("iterations"),
          "Runs `iterations` rounds of independent FP32 FMA chains on each of `threads` threads "
          "with the active ISA; returns the FLOPs done (time it to get the peak).");
    m.def("openmp_version", &openmp_version, "The _OPENMP version (yyyymm) compiled against.");
    m.def("openmp_library", [] { return std::string(openmp_library()); },
          "Path of the OpenMP runtime library loaded in this process.");
}

}  // namespace convengine::bindings
