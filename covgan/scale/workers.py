"""What a Beam worker process holds and reads: the run's models, loaded once per process
(Beam's Shared handle: every DoFn instance in the process gets the same models), and images
read as the in-process commands read them."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

# A test hook: "CHUNK:FLAG_FILE" makes the first try of that chunk raise once its part is
# written (FLAG_FILE records that it did), as a worker lost after its write would.
FAIL_ONCE = "COVGAN_BEAM_FAIL_ONCE"


class WorkerModels:
    """The run's G, C and E (where the inversion starts at E) in one worker process."""

    def __init__(self, run_dir, settings):
        from covgan.training.runs import encoder_for, load_run

        run = load_run(run_dir)
        self.generator, self.classifier = run.generator, run.classifier
        self.encoder = encoder_for(run, settings)


def models_in_worker(shared, run_dir, settings, threads=0) -> WorkerModels:
    """The run's models, loaded by the first caller in this process (`shared`: a
    `apache_beam.utils.shared.Shared` made with the pipeline). `threads`: TensorFlow's
    threads in this process (0: its default), set before the models are loaded."""
    from covgan.cpu import use_onednn

    use_onednn()
    if threads:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already started in this process (in-memory runs)
            pass
    return shared.acquire(lambda: WorkerModels(run_dir, settings),
                          tag=json.dumps([str(run_dir), threads]))


def prepared_images(data_dir, records) -> np.ndarray:
    """The records' images (N, 128, 128, 1) as the in-process audit reads them."""
    from covgan.data.pipeline import make_dataset

    batches = make_dataset(data_dir, list(records), batch_size=len(records), cache=None)
    return np.concatenate([b[0].numpy() for b in batches])


def fail_once_after_writing(chunk: int) -> None:
    """Raises on the first try of the chunk FAIL_ONCE names (tests of retries and resumes)."""
    hook = os.environ.get(FAIL_ONCE)
    if not hook:
        return
    target, flag = hook.split(":", 1)
    if int(target) == chunk and not os.path.exists(flag):
        pathlib.Path(flag).touch()
        raise RuntimeError(f"injected failure after chunk {chunk}'s part was written")
