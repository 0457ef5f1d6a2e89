"""Tests of covgan.serving."""
