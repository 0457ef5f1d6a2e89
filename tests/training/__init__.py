"""Tests of covgan.training."""
