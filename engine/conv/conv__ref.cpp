// Convolution kernels, ref variant (compiler flags chosen by the file-name suffix in setup.py).
#define CE_ISA ref
#include "conv_impl.inc"
