"""Tests of covgan.export."""
