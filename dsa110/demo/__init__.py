"""The realistic synthetic DSA-110 data set: ``dsa110-graph demo`` and :func:`build_demo`."""

from dsa110.demo.build import DemoExistsError, DemoSummary, build_demo

__all__ = ["DemoExistsError", "DemoSummary", "build_demo"]
