"""covgan: visual explanations for CNN classifiers via latent traversal of a conditional GAN.

The verbs a Python user calls, each a function of a run and images (`covgan.api`):

    import covgan

    run = covgan.load_run("runs/demo/gan")
    result = covgan.explain_images(run, ["chest.png"])   # what `covgan explain` computes
    result["film_gradients"][0]                       # the default map

They load on first use (PEP 562), so `import covgan` stays light and `covgan --help`
answers without importing TensorFlow. Importing covgan changes no environment variable; on a
CPU without AVX-512, `covgan.cpu.use_onednn()` before TensorFlow is imported gives the speed
the commands get (they call it).
"""

import importlib

__version__ = "0.1.0"

__all__ = ["audit", "explain_images", "invert", "load_run", "localise", "read_images",
           "traverse"]


def __getattr__(name):
    if name in __all__:
        return getattr(importlib.import_module("covgan.api"), name)
    raise AttributeError(f"module 'covgan' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
