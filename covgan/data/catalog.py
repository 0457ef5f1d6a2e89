"""Resolves a DATA argument: a prepared folder, or `phantom` for the built-in set.

The built-in set is generated once per (version, seed, count) into the cache
folder ($COVGAN_CACHE, else ~/.cache/covgan) and reused; generation is atomic, so
an interrupted first run leaves nothing behind and the next run starts over.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

from covgan.data import layout
from covgan.data.synth import synthesize
from covgan.errors import CovganError

PHANTOM = "phantom"
PHANTOM_COUNT = 2000
PHANTOM_SEED = 0
# Bump when the renderer or the files written change, so stale caches are not reused
# (2: lung-field masks).
_PHANTOM_VERSION = 2


def cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("COVGAN_CACHE") or pathlib.Path.home() / ".cache" / "covgan")


def resolve_data(spec: str, *, progress: Callable | None = None) -> pathlib.Path:
    """Returns the prepared folder for DATA `spec`, generating the phantom set if needed.

    Raises:
        CovganError: `spec` is neither `phantom` nor a prepared folder.
    """
    if str(spec) == PHANTOM:
        folder = cache_dir() / f"phantom-v{_PHANTOM_VERSION}-seed{PHANTOM_SEED}-n{PHANTOM_COUNT}"
        if not (folder / layout.MANIFEST).is_file():
            synthesize(folder, count=PHANTOM_COUNT, seed=PHANTOM_SEED, overwrite=True,
                       progress=progress)
        return folder
    folder = pathlib.Path(spec)
    if not folder.is_dir():
        raise CovganError(f"Data folder not found: {folder} (or use DATA=phantom).")
    layout.read_manifest(folder)  # fails early, with a clear message, if malformed
    return folder
