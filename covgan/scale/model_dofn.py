"""The DoFn every covgan pipeline step that computes builds on: it holds the run's models,
loaded once per worker process (`workers.models_in_worker`). Imports Apache Beam."""

from __future__ import annotations

import apache_beam as beam

from covgan.scale.workers import models_in_worker


class WithModels(beam.DoFn):
    """A DoFn of `job` (anything with run_dir, settings and threads) whose `self.models` are
    the run's G, C and E once `setup` has run."""

    def __init__(self, job, shared):
        super().__init__()
        self.job, self.shared = job, shared

    def setup(self):
        self.models = models_in_worker(self.shared, self.job.run_dir, self.job.settings,
                                       self.job.threads)
