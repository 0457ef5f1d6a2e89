"""Explanations and audits of whole data sets on Apache Beam (`--runner beam`): the same
explanation and the same aggregation as the in-process commands, spread over an engine's
workers, written image by image so that a run resumes where it stopped.

Apache Beam is an extra (`pip install 'covgan[beam]'`); nothing here imports it at module
level except the pipelines themselves.
"""
