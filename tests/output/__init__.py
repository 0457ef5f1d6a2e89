"""Tests of covgan.output."""
