"""Array backends behind the autograd layer.

cpu: convengine's compiled kernels (convengine._C) where they apply, NumPy elsewhere.
reference: slow, obvious NumPy implementations that every fast kernel is tested against.
"""
