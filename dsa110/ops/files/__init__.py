"""Reading the pipeline's files for clients: Measurement Sets and calibration tables
(python-casacore), UVH5 headers (h5py), FITS and CASA tables for QA, plots and notebooks.

Every path a client names goes through :func:`dsa110.ops.files.paths.resolve_path` first,
every path the database holds through :func:`~dsa110.ops.files.paths.resolve_stored`:
nothing outside the configured roots is opened.
"""
