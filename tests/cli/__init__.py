"""Tests of covgan.cli."""
