"""Opening jaxspec's own versioned HDF5 files (clones, amortized predictors, VAEs) with clear errors."""

from __future__ import annotations


def open_versioned(path, fmt: str, version: int, what: str, remedy: str):
    """Open ``path`` for reading and check its ``format`` and ``version`` root attributes.

    Args:
        path: the file.
        fmt: the expected ``format`` attribute (e.g. ``"jaxspec-clone"``).
        version: the version this jaxspec reads.
        what: what the file holds, for messages (e.g. ``"clone"``).
        remedy: what to do about another version (appended to that message).

    Returns:
        The open ``h5py.File`` (the caller closes it, e.g. ``with open_versioned(...) as f``).

    Raises:
        ValueError: not a readable HDF5 file, another format, or another version (both
            versions named).
    """
    import h5py

    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from None
    found = f.attrs.get("format")
    if found != fmt:
        f.close()
        raise ValueError(f"{path}: not a jaxspec {what} file (format {found!r}, expected {fmt!r})")
    got = f.attrs.get("version")
    if got is None or int(got) != version:
        f.close()
        raise ValueError(f"{path}: {what} file version {got}, but this jaxspec reads version {version}; {remedy}")
    return f
