"""Reading spectra (generic FITS, APOGEE, LAMOST, GALAH, arrays), the HDF5 survey stack and results tables.

* :func:`read_spectrum` / :func:`read_spectra` read any supported file into a
  :class:`Spectrum` (vacuum wavelengths, increasing; masked pixels at
  ``ivar = 0``), detecting the format from the file's HDUs and headers
  (:data:`FORMATS`); the per-format readers are here too.
* :func:`write_stack`, :class:`StackWriter`, :func:`read_stack`: the HDF5
  survey stack (schema in :mod:`jaxspec.io.stack`).
* :func:`results_table`, :func:`write_results`, :func:`read_results`: one
  results table per run, as FITS, HDF5 or ECSV (:mod:`jaxspec.io.results`).

astropy and h5py are imported lazily, inside the functions that need them.
"""

from jaxspec.io.apogee import read_apstar, read_apvisit, read_aspcapstar
from jaxspec.io.fits import read_fits_image, read_fits_table
from jaxspec.io.galah import GALAH_RESOLUTION, read_galah
from jaxspec.io.lamost import read_lamost_lrs, read_lamost_mrs
from jaxspec.io.read import FORMATS, detect_format, read_npz, read_spectra, read_spectrum
from jaxspec.io.results import read_results, results_table, write_results
from jaxspec.io.spectrum import Spectrum, SpectrumFormatError, from_arrays, from_specutils
from jaxspec.io.stack import Stack, StackWriter, read_stack, stack_info, write_stack

__all__ = [
    "FORMATS",
    "GALAH_RESOLUTION",
    "Spectrum",
    "SpectrumFormatError",
    "Stack",
    "StackWriter",
    "detect_format",
    "from_arrays",
    "from_specutils",
    "read_apstar",
    "read_apvisit",
    "read_aspcapstar",
    "read_fits_image",
    "read_fits_table",
    "read_galah",
    "read_lamost_lrs",
    "read_lamost_mrs",
    "read_npz",
    "read_results",
    "read_spectra",
    "read_spectrum",
    "read_stack",
    "results_table",
    "stack_info",
    "write_results",
    "write_stack",
]
