"""Tests of covgan.evaluation."""
