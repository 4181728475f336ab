"""Reading spectra (generic FITS, APOGEE, LAMOST, arrays), the HDF5 survey stack and results tables.

astropy and h5py are imported lazily, inside the functions that need them.
"""
