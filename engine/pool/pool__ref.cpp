// Pooling kernels, ref variant (compiler flags chosen by the file-name suffix in setup.py).
#define CE_ISA ref
#include "pool_impl.inc"
