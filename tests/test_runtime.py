"""covgan turns on TensorFlow's oneDNN CPU kernels (TF does so by itself only on CPUs with
AVX-512 VNNI, BF16 or AMX), and an explicit TF_ENABLE_ONEDNN_OPTS=0 still turns them off."""

import os
import subprocess
import sys

import pytest

# Imports covgan, then TensorFlow, and prints whether TF runs its oneDNN kernels.
PROBE = ("import covgan, tensorflow; "
         "from tensorflow.python.util import _pywrap_util_port as port; "
         "print(port.IsMklEnabled())")


def onednn_after_importing_covgan(setting):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("setting, expected", [(None, "True"), ("0", "False"), ("1", "True")])
def test_importing_covgan_turns_onednn_on_unless_told_not_to(setting, expected):
    assert onednn_after_importing_covgan(setting) == expected
