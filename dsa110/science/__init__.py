"""Science: variability, ESE detection, photometry, image analysis, sky indexing."""
