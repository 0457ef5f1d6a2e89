"""covgan: visual explanations for CNN classifiers via latent traversal of a conditional GAN."""

import os

# TensorFlow turns on its oneDNN kernels by itself only on CPUs with AVX-512 VNNI, BF16 or AMX.
# Without them (an AMD EPYC without AVX-512, say) its own convolution gradients are much
# slower than oneDNN's (docs/results/performance.md), and the inversion, the tuning and training are
# made of them. TensorFlow reads it on import, so it is set here, before any covgan module
# imports it; TF_ENABLE_ONEDNN_OPTS=0 in the environment still turns it off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
