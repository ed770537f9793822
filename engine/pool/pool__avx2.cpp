// Pooling kernels, avx2 variant (compiler flags chosen by the file-name suffix in setup.py).
#define CE_ISA avx2
#include "pool_impl.inc"
