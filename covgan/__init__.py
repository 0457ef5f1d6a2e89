"""covgan: visual explanations for CNN classifiers via latent traversal of a conditional GAN.

The verbs a Python user calls, each a function of a run and images (`covgan.api`):

    import covgan

    run = covgan.load_run("runs/demo/gan")
    result = covgan.explain_images(run, ["chest.png"])   # what `covgan explain` computes
    result["latent_gradients"][0]                     # the default map

They load on first use (PEP 562), so `import covgan` stays light and `covgan --help`
answers without importing TensorFlow.
"""

import importlib
import os

# TensorFlow turns on its oneDNN kernels by itself only on CPUs with AVX-512 VNNI, BF16 or AMX.
# Without them (an AMD EPYC without AVX-512, say) its own convolution gradients are much
# slower than oneDNN's (docs/results/performance.md), and the inversion, the tuning and training are
# made of them. TensorFlow reads it on import, so it is set here, before any covgan module
# imports it; TF_ENABLE_ONEDNN_OPTS=0 in the environment still turns it off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"

__all__ = ["audit", "explain_images", "invert", "load_run", "localise", "read_images",
           "traverse"]


def __getattr__(name):
    if name in __all__:
        return getattr(importlib.import_module("covgan.api"), name)
    raise AttributeError(f"module 'covgan' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
