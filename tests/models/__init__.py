"""Tests of covgan.models."""
