"""Plots people would rather look at than read: light curves and the sky map, as PNG or SVG."""
