"""`import covgan`: the verbs of the command line as functions of a run and images."""

import subprocess
import sys

import numpy as np
import pytest

import covgan


def test_importing_covgan_loads_no_tensorflow_until_a_verb_is_used():
    probe = ("import sys, covgan; assert 'tensorflow' not in sys.modules; "
             "assert set(covgan.__all__) <= set(dir(covgan)); covgan.read_images; "
             "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"  # the verbs' module brings it, on first use


def test_read_images_takes_files_and_arrays_as_the_commands_do(phantom_positives):
    from_files = covgan.read_images(phantom_positives)
    assert from_files.shape == (2, 128, 128, 1) and from_files.dtype == np.float32
    one = from_files[0, ..., 0]
    for given in (one, one[None], one[None, ..., None]):
        np.testing.assert_array_equal(covgan.read_images(given), from_files[:1])
    with pytest.raises(ValueError, match="Received: shape"):
        covgan.read_images(np.zeros((2, 64, 64)))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        covgan.read_images(np.full((128, 128), 2.0))


def test_invert_then_traverse_walks_from_the_counterpart_to_the_reconstruction(
        tiny_run, phantom_positives):
    run = covgan.load_run(tiny_run)
    codes = covgan.invert(run, phantom_positives[:1])
    walk, p = covgan.traverse(run, codes["z1"], codes["z2"], steps=4)
    assert walk.shape == (1, 5, 128, 128, 1) and p.shape == (1, 5)
    np.testing.assert_allclose(walk[:, -1], codes["reconstructions"], atol=1e-4)
    np.testing.assert_allclose(walk[:, 0], codes["counterparts"], atol=1e-4)
