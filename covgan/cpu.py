"""What this machine's CPU can do that changes covgan's speed (no TensorFlow: the benchmark's
parent process reads it too)."""

from __future__ import annotations

import os

# The instructions that compute in bfloat16. Without any, TensorFlow emulates bfloat16 and a
# mixed-precision step is slower than float32's, not faster (docs/results/performance.md: 16x for
# the tiny inversion step on a 2-core AMD EPYC without AVX-512).
BFLOAT16_INSTRUCTIONS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str] | None:
    """The CPU's instruction flags (Linux /proc/cpuinfo); None where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def bfloat16_is_emulated() -> bool:
    """Whether this CPU is known to lack every bfloat16 instruction (False where the flags
    cannot be read: nothing is claimed)."""
    flags = cpu_flags()
    return flags is not None and not flags & set(BFLOAT16_INSTRUCTIONS)


def use_onednn() -> None:
    """Asks TensorFlow for its oneDNN CPU kernels, unless the environment says otherwise.

    TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI, BF16 or AMX. Without
    them (an AMD EPYC without AVX-512, say) its own convolution gradients are much slower than
    oneDNN's (docs/results/performance.md), and the inversion, the tuning and training are
    made of them. TensorFlow reads the variable when it is imported, so this must run first:
    the command line's entry point, the test suite and the tools call it; importing covgan
    does not (a library changes no environment variable). TF_ENABLE_ONEDNN_OPTS=0 in the
    environment still turns them off.
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
