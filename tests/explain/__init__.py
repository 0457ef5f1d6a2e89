"""Tests of covgan.explain."""
