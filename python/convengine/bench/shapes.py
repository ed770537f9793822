"""Benchmark shapes, defined once and shared by the CLI suites, benchmarks/ and tests."""

# GEMM (issue 3): square sizes, and the (M, K, N) of convolutions lowered to im2col + GEMM:
# (output channels, C*R*S, N*OH*OW) of ResNet-like layers.
GEMM_SQUARE = [256, 512, 1024, 2048]
GEMM_IM2COL = [(64, 576, 25088), (128, 1152, 6272), (256, 2304, 1568), (512, 4608, 392)]

# Convolution (issue 4): name -> (N, C, H, W, K, R, S, stride, pad, groups).
CONV2D = {
    "mnist_c1": (64, 1, 28, 28, 32, 3, 3, 1, 1, 1),
    "mnist_c2": (64, 32, 14, 14, 64, 3, 3, 1, 1, 1),
    "resnet_stem": (8, 3, 224, 224, 64, 7, 7, 2, 3, 1),
    "resnet_l1": (8, 64, 56, 56, 64, 3, 3, 1, 1, 1),
    "resnet_l2_down": (8, 64, 56, 56, 128, 3, 3, 2, 1, 1),
    "resnet_1x1_down": (8, 64, 56, 56, 128, 1, 1, 2, 0, 1),
    "resnet_l3": (8, 256, 14, 14, 256, 3, 3, 1, 1, 1),
    "resnet_l4": (8, 512, 7, 7, 512, 3, 3, 1, 1, 1),
    "vgg_c1_2": (4, 64, 224, 224, 64, 3, 3, 1, 1, 1),
    "unet_ct_in": (4, 1, 256, 256, 32, 3, 3, 1, 1, 1),
    "unet_ct_mid": (4, 64, 64, 64, 64, 3, 3, 1, 1, 1),
    "depthwise": (8, 128, 56, 56, 128, 3, 3, 1, 1, 128),
    "batch1_infer": (1, 64, 56, 56, 64, 3, 3, 1, 1, 1),
}
# Forward only for these (inference shapes).
CONV2D_FORWARD_ONLY = {"batch1_infer"}
# conv3d: (N, C, D, H, W, K, kernel, stride, pad)
CONV3D = {"conv3d_ct": (2, 16, 32, 64, 64, 32, 3, 1, 1)}
# conv_transpose2d: (N, C, H, W, K, kernel, stride)
CONV_TRANSPOSE2D = {"convT_unet_up": (4, 64, 64, 64, 32, 2, 2)}

# Pooling (issue 4): name -> (input shape, kind, kernel, stride, padding).
POOL = {
    "max2x2s2": ((8, 64, 112, 112), "max", 2, 2, 0),
    "max3x3s2p1": ((8, 64, 112, 112), "max", 3, 2, 1),
    "avg2x2s2": ((8, 64, 112, 112), "avg", 2, 2, 0),
    "adaptive_avg_1x1": ((8, 512, 7, 7), "adaptive_avg", 1, None, 0),
}

# Element-wise kernels: one activation-sized tensor.
ELEMENTWISE_SHAPE = (8, 64, 56, 56)
