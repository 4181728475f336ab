"""jaxspec: find and measure double-lined spectroscopic binaries with JAX."""

from jaxspec._version import __version__

__all__ = ["__version__"]
