"""Tests of covgan.data."""
