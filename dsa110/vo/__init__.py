"""The Virtual Observatory face of the catalog: Simple Cone Search 1.03 and VOSI documents."""
