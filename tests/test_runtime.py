"""The command line turns on TensorFlow's oneDNN CPU kernels (TF does so by itself only on CPUs
with AVX-512 VNNI, BF16 or AMX), and an explicit TF_ENABLE_ONEDNN_OPTS=0 still turns them off;
without them, batched tuning is off too (TF's own CPU kernels have no gradient for grouped
convolutions). Importing covgan itself changes no environment variable."""

import os
import subprocess
import sys

import pytest

# Imports the command line, then TensorFlow, and prints whether TF runs its oneDNN kernels
# and whether grouped convolutions have gradients on the CPU (batched tuning needs them): one
# process for both, since a TensorFlow start is most of each probe's time.
PROBE = ("import covgan.cli, tensorflow as tf; tf.config.set_visible_devices([], 'GPU'); "
         "from tensorflow.python.util import _pywrap_util_port as port; "
         "from covgan.explain.per_row_weights import grouped_convolution_gradients_work; "
         "print(port.IsMklEnabled(), grouped_convolution_gradients_work())")


def onednn_after_importing_covgan(setting):
    """(oneDNN on, grouped-convolution gradients work) in a fresh process, as strings."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return tuple(done.stdout.strip().splitlines()[-1].split())


@pytest.mark.parametrize("setting, expected", [(None, "True"), ("0", "False"), ("1", "True")])
def test_the_command_line_turns_onednn_on_unless_told_not_to_and_batched_tuning_follows(
        setting, expected):
    # Batched tuning is possible exactly where oneDNN is on.
    assert onednn_after_importing_covgan(setting) == (expected, expected)


def test_importing_covgan_changes_no_environment_variable():
    probe = ("import os; before = dict(os.environ); import covgan, covgan.cpu; "
             "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]"
