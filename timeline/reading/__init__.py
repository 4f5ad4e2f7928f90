"""Reading: files in, one event frame on one UTC clock out (loader, signatures, inferred
changes). Knows formats only through :mod:`parsers`; knows nothing of the analysis."""
