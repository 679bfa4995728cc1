"""structocr: check StructOCR API credits and usage from a terminal, a script or CI."""

__version__ = "0.2.0"
