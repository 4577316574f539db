"""A small real upstream of ours that speaks docs/upstream-api.md, for the demo and tests."""

from usage.simulator.generator import Faults, LicenseProfile

__all__ = ["Faults", "LicenseProfile"]
