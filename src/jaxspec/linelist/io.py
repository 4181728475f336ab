"""Readers for atomic line lists: VALD3 short "extract stellar" and MOOG.

Both readers return a :class:`~jaxspec.linelist.linelist.LineList` with vacuum
wavelengths [A] and the field conventions documented there. Both accept plain
or gzip-compressed files; compression is recognised by the gzip magic bytes,
not by the file name. Molecular lines are skipped (the generator is atomic
only) and counted; ``return_info=True`` returns the counts alongside the list.

Malformed input raises ``ValueError`` naming the 1-based line number in the
file and the offending text (truncated to about 80 characters).
"""

from __future__ import annotations

import gzip
import math
import os
from collections import Counter

import numpy as np

from jaxspec.linelist.linelist import ELEMENT_SYMBOLS, SOURCE_GES, SOURCE_VALD, LineList
from jaxspec.physics.airvac import air_to_vacuum

__all__ = ["read_vald", "read_moog"]

_GZIP_MAGIC = b"\x1f\x8b"
_Z_OF_SYMBOL = {s: i + 1 for i, s in enumerate(ELEMENT_SYMBOLS)}
_MAX_ION = 2  # LineList supports neutral, singly and doubly ionized species

# VALD3 short format: species, then these 9 numbers, then the quoted references.
_VALD_NUMERIC = (
    "wavelength",
    "excitation energy",
    "vmic",
    "log gf",
    "Rad",
    "Stark",
    "Waals",
    "Lande factor",
    "central depth",
)
_VALD_NFIELDS = 1 + len(_VALD_NUMERIC) + 1


def _read_lines(path: str | os.PathLike) -> list[str]:
    """All lines of a text file, plain or gzip-compressed (by magic bytes)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    opener = gzip.open if magic == _GZIP_MAGIC else open
    # latin-1 never fails to decode; only the (discarded) reference strings
    # could hold non-ASCII text.
    with opener(path, "rt", encoding="latin-1") as fh:
        return fh.read().splitlines()


def _show(text: str, width: int = 80) -> str:
    text = text.rstrip()
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def _bad(lineno: int, message: str, text: str) -> ValueError:
    return ValueError(f"line {lineno}: {message}: {_show(text)}")


def _number(token: str, lineno: int, what: str, text: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise _bad(lineno, f"{what} is not a number ({token.strip()!r})", text) from None
    if not math.isfinite(value):
        raise _bad(lineno, f"{what} is not finite ({token.strip()!r})", text)
    return value


def _empty_info(**extra) -> dict:
    info = {"n_records": 0, "n_atomic": 0, "skipped_molecules": 0, "skipped_high_ion": 0}
    info.update(extra)
    return info


# ---------------------------------------------------------------------------
# VALD3


def read_vald(path: str | os.PathLike, *, return_info: bool = False):
    """Read a VALD3 short-format "extract stellar" line list.

    Layout: line 1 holds the wavelength range and the number of records N (its
    third comma-separated number); lines 2-3 are column headers, which say
    whether wavelengths are in vacuum (``WL_vac(A)``) or air (``WL_air(A)``);
    the next N lines are records
    ``'Fe 1', wave, E_low[eV], vmic, loggf, Rad, Stark, Waals, Lande, depth, 'refs'``.
    Everything after the N records (model name, abundances, references) is
    ignored.

    Conversions:
      * species ``'El s'`` with an element symbol and stage s = 1, 2, 3 becomes
        ``z`` and ``ion = s - 1``; anything whose symbol is not an element
        (CH, CN, OH, NH, TiO, ...) is a molecule and is skipped; atomic stages
        above 3 are skipped too (both counted in ``info``);
      * air wavelengths are converted to vacuum with
        :func:`jaxspec.physics.airvac.air_to_vacuum`;
      * 0.0 in Rad, Stark or Waals means "not given" and becomes NaN; other
        values are kept in VALD's convention (see ``LineList``);
      * hydrogen lines are kept (z = 1). VALD stores the principal quantum
        numbers there instead of damping constants: Stark holds the lower and
        Waals the upper level's n (``'H 1', 4862.68, ..., 2.000, 4.000``).
        Both are passed through unchanged; a generator must treat H itself.

    Args:
        path: file name; plain text or gzip-compressed.
        return_info: also return a dict of counts: ``n_records`` (N),
            ``n_atomic`` (lines returned), ``skipped_molecules``,
            ``skipped_high_ion``, ``molecules`` (skipped lines per molecule) and
            ``air`` (whether the file gave air wavelengths).

    Returns:
        ``LineList`` (source = 0, VALD) in file order, or ``(LineList, info)``.

    Raises:
        ValueError: malformed header, fewer records than announced (truncated
            file), a record without 11 comma-separated fields, an unreadable
            species, a field that is not a finite number. Messages name the
            1-based line number and show the offending text.
    """
    lines = _read_lines(path)
    if not lines:
        raise ValueError(f"{os.fspath(path)}: empty file, expected a VALD3 header")
    head = lines[0].split(",")
    try:
        n_records = int(head[2])
    except (IndexError, ValueError):
        raise _bad(
            1,
            "expected a VALD3 short-format header 'wmin, wmax, n_selected, n_processed, vmic'",
            lines[0],
        ) from None
    if n_records < 0:
        raise _bad(1, "negative number of records in the header", lines[0])
    columns = " ".join(lines[1:3])
    if "WL_air" in columns:
        air = True
    elif "WL_vac" in columns:
        air = False
    else:
        raise _bad(
            3,
            "column headers name neither WL_vac(A) nor WL_air(A); cannot tell air from vacuum",
            lines[2] if len(lines) > 2 else "",
        )
    n_found = max(len(lines) - 3, 0)
    if n_found < n_records:
        raise ValueError(
            f"truncated file: the header (line 1) announces {n_records} records but only "
            f"{n_found} lines follow the column headers"
        )

    rows = []
    molecules: Counter[str] = Counter()
    skipped_high_ion = 0
    for k in range(n_records):
        lineno = k + 4
        text = lines[k + 3]
        stripped = text.strip()
        # The species is quoted; split it off by its quotes, then split the
        # rest on the first 9 commas so that the reference string (which may
        # hold commas or quotes) stays whole.
        end = stripped.find("'", 1) if stripped.startswith("'") else -1
        if end < 0:
            n = len(stripped.split(",")) if stripped else 0
            raise _bad(
                lineno,
                f"expected {_VALD_NFIELDS} comma-separated fields starting with a quoted "
                f"species, got {n}",
                text,
            )
        species = stripped[1:end]
        rest = stripped[end + 1 :].lstrip()
        if not rest.startswith(","):
            raise _bad(lineno, "expected a comma after the quoted species", text)
        fields = rest[1:].split(",", len(_VALD_NUMERIC))
        if len(fields) != len(_VALD_NUMERIC) + 1:
            raise _bad(
                lineno,
                f"expected {_VALD_NFIELDS} comma-separated fields, got {1 + len(fields)}",
                text,
            )
        values = [
            _number(tok, lineno, f"field {i + 2} ({name})", text)
            for i, (tok, name) in enumerate(zip(fields, _VALD_NUMERIC, strict=False))
        ]
        parts = species.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise _bad(lineno, f"cannot read species {species!r} (expected e.g. 'Fe 1')", text)
        symbol, stage = parts[0], int(parts[1])
        z = _Z_OF_SYMBOL.get(symbol)
        if z is None:
            molecules[symbol] += 1
            continue
        if not 1 <= stage <= _MAX_ION + 1:
            if stage < 1:
                raise _bad(lineno, f"ionization stage {stage} in species {species!r}", text)
            skipped_high_ion += 1
            continue
        rows.append((z, stage - 1, *values))

    info = _empty_info(
        n_records=n_records,
        n_atomic=len(rows),
        skipped_molecules=int(sum(molecules.values())),
        skipped_high_ion=skipped_high_ion,
        molecules=dict(molecules),
        air=air,
    )
    data = np.array(rows, dtype=np.float64).reshape(len(rows), 2 + len(_VALD_NUMERIC))
    wave = data[:, 2]
    if air:
        wave = air_to_vacuum(wave)

    def _given(col):
        return np.where(col == 0.0, np.nan, col)

    ll = LineList.from_arrays(
        wave=wave,
        z=data[:, 0].astype(np.int32),
        ion=data[:, 1].astype(np.int32),
        chi=data[:, 3],
        loggf=data[:, 5],
        log_gamma_rad=_given(data[:, 6]),
        log_gamma_stark=_given(data[:, 7]),
        vdw=_given(data[:, 8]),
        source=np.full(len(rows), SOURCE_VALD),
    )
    return (ll, info) if return_info else ll


# ---------------------------------------------------------------------------
# MOOG

_MOOG_WIDTH = 10  # MOOG's formatted line lists use 10-character columns
_MOOG_NAMES = ("wavelength", "species code", "excitation energy", "log gf", "C6")


def _moog_fixed_width(text: str) -> list[str] | None:
    """The first five 10-character columns, or None if the row is not laid out so.

    A row counts as fixed-width when wavelength, species, EP and log gf columns
    each hold exactly one token and no column boundary cuts through a token
    (touching numbers such as ``-2.491-7.680`` are fine: a sign starts a new
    one). Whitespace-separated rows whose tokens happen to align give the same
    values either way.
    """
    if len(text.rstrip()) <= 3 * _MOOG_WIDTH:
        return None
    cols = [text[k * _MOOG_WIDTH : (k + 1) * _MOOG_WIDTH] for k in range(5)]
    for k, col in enumerate(cols):
        token = col.strip()
        if (not token and k < 4) or len(token.split()) > 1:
            return None
    for b in range(_MOOG_WIDTH, 5 * _MOOG_WIDTH + 1, _MOOG_WIDTH):
        if b >= len(text):
            break
        left, right = text[b - 1], text[b]
        if not (left.isspace() or right.isspace() or right in "+-"):
            return None
    return [c.strip() for c in cols]


def read_moog(path: str | os.PathLike, *, air: bool = True, return_info: bool = False):
    """Read a MOOG-format atomic line list.

    Line 1 is a free-text title. Each further non-blank line holds
    ``wavelength  species  EP[eV]  loggf  [C6  [D0  [EW]]]``, where the species
    code is Z + stage/10 (26.0 = Fe I, 26.1 = Fe II; further decimals, e.g.
    isotope tags, are ignored). Rows may be MOOG's fixed 10-character columns
    (in which numbers may touch and blank columns are allowed) or
    whitespace-separated; each row is read as fixed-width when it is laid out
    so, otherwise by splitting on whitespace. D0 and EW are not used.

    Conversions:
      * wavelengths are converted air -> vacuum (IAU/Morton 2000) when ``air``;
      * C6 is kept in the VALD convention (negative: log10 gamma_6/N_H at
        10^4 K; >= 20: packed ABO sigma.alpha); 0 or a blank column means
        "not given" and becomes NaN. Values between 0 and 20 do not occur in
        the Gaia-ESO list and are passed through unchanged;
      * MOOG has no radiative or Stark constants: those fields are NaN;
      * molecule codes (Z > 92, e.g. 106.0 CH, 606.0 C2) are skipped, and so are
        atomic stages above III; both are counted in ``info``.

    Args:
        path: file name; plain text or gzip-compressed.
        air: whether the file's wavelengths are in air (Gaia-ESO lists are).
        return_info: also return a dict of counts: ``n_records``, ``n_atomic``,
            ``skipped_molecules``, ``skipped_high_ion``.

    Returns:
        ``LineList`` (source = 1, Gaia-ESO) in file order, or ``(LineList, info)``.

    Raises:
        ValueError: a row with fewer than four numeric columns, a non-numeric
            or non-finite value, an invalid species code; the message names the
            1-based line number.
    """
    lines = _read_lines(path)
    wave, code, chi, loggf, c6 = [], [], [], [], []
    n_records = 0
    for lineno, text in enumerate(lines[1:], start=2):
        if not text.strip():
            continue
        n_records += 1
        cols = _moog_fixed_width(text)
        if cols is None:
            toks = text.split()
            if len(toks) < 4:
                raise _bad(
                    lineno,
                    f"expected at least 4 columns (wavelength, species, EP, log gf), "
                    f"got {len(toks)}",
                    text,
                )
            cols = toks[:5]
        values = [
            _number(tok, lineno, name, text) if tok else math.nan
            for tok, name in zip(cols, _MOOG_NAMES, strict=False)
        ]
        if values[1] < 1.0:
            raise _bad(lineno, f"invalid species code {cols[1]!r}", text)
        wave.append(values[0])
        code.append(values[1])
        chi.append(values[2])
        loggf.append(values[3])
        c6.append(values[4] if len(values) > 4 else math.nan)

    code_arr = np.asarray(code, dtype=np.float64)
    z = np.floor(code_arr).astype(np.int64)
    ion = np.floor((code_arr - z) * 10.0 + 1e-6).astype(np.int64)
    molecule = z > len(ELEMENT_SYMBOLS)
    high_ion = ~molecule & (ion > _MAX_ION)
    keep = ~molecule & ~high_ion

    wave_arr = np.asarray(wave, dtype=np.float64)[keep]
    if air:
        wave_arr = air_to_vacuum(wave_arr)
    c6_arr = np.asarray(c6, dtype=np.float64)[keep]
    c6_arr = np.where(c6_arr == 0.0, np.nan, c6_arr)
    n_keep = int(keep.sum())
    ll = LineList.from_arrays(
        wave=wave_arr,
        z=z[keep],
        ion=ion[keep],
        chi=np.asarray(chi, dtype=np.float64)[keep],
        loggf=np.asarray(loggf, dtype=np.float64)[keep],
        log_gamma_rad=np.full(n_keep, np.nan),
        log_gamma_stark=np.full(n_keep, np.nan),
        vdw=c6_arr,
        source=np.full(n_keep, SOURCE_GES),
    )
    if not return_info:
        return ll
    info = _empty_info(
        n_records=n_records,
        n_atomic=n_keep,
        skipped_molecules=int(molecule.sum()),
        skipped_high_ion=int(high_ion.sum()),
        air=air,
    )
    return ll, info
