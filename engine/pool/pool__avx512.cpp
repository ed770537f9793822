// Pooling kernels, avx512 variant (compiler flags chosen by the file-name suffix in setup.py).
#define CE_ISA avx512
#include "pool_impl.inc"
