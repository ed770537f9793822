// Activation kernels, ref variant (compiler flags chosen by the file-name suffix in setup.py).
#define CE_ISA ref
#include "activation_impl.inc"
