"""Tables for other tools: column metadata (units, UCDs) and streaming VOTable/CSV/ECSV/FITS writers."""
