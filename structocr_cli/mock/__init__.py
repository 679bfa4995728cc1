"""``structocr mock``: a local StructOCR server for demos and offline tests, and its fault
keys."""
