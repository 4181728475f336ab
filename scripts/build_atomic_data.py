"""Build jaxspec's shipped atomic tables and built-in line list.

Usage::

    python scripts/build_atomic_data.py [--shared-dir DIR] [--out-dir DIR]

``DIR`` defaults to ``$JAXSPEC_SHARED_DATA`` or ``<repo>/../shared/data``; the
inputs are under ``DIR/atomic/`` (see ``atomic/README.md`` there for every
file's format and origin). Outputs go to ``src/jaxspec/data/``:

``atomic_tables.npz`` (``np.savez_compressed``, no object arrays)
    ``log_t_grid`` (120,)
        ln T [ln K], uniform: T = 1000 K x 10^(i/80), i = 0..119, i.e.
        1000-30,726 K with a step of ln(10)/80 (2.9% in T). The step is chosen
        so that 10^4 K, where Barklem & Collet stop, is node 80 exactly; the
        upper end passes 30,000 K.
    ``partition`` (92, 3, 120), ``partition_known`` (92, 3)
        Q for Z = 1..92, stages I, II, III.
        * T <= 10^4 K: Barklem & Collet 2016 (table 8), resampled from its
          42-point grid by monotone cubic (PCHIP) interpolation of ln Q in ln T.
        * T > 10^4 K: the Korg NIST-levels table (sum over all NIST levels, no
          truncation), resampled the same way, multiplied by
          Q_BC(10^4 K) / Q_NIST(10^4 K) so the two join continuously. The
          factor is 1.0000-1.0004 for H, Mg, Ca, Fe; it is far from 1 only
          for a few heavy species whose NIST level lists are incomplete
          (U II 19, Pa I/II 11-12, U I 10, Th III 0.09), where the shape above
          10^4 K is correspondingly uncertain.
        * Species only in B&C (H II): its 10^4 K value held constant above.
          Species only in the NIST table: that table over the whole grid.
        * Species in neither (H III, which does not exist): Q = 1 and
          ``partition_known`` False, so a generator can refuse those lines.
          H II is Q = 1 (a bare proton).
    ``ionization_energy`` (92, 3) [eV]
        IE1, IE2, IE3 from Barklem & Collet 2016; their -1 ("does not exist")
        becomes NaN.
    ``atomic_mass`` (92,) [amu]
        NIST standard atomic weights; intervals such as H [1.00784,1.00811]
        give their midpoint. Elements without a standard weight (Tc, Pm, Po,
        At, Rn, Fr, Ra, Ac) have the mass number of their longest-lived isotope
        in brackets ([98] for Tc); we use the relative atomic mass of that
        isotope from the same table.
    ``solar_abundance`` (92,), ``solar_abundance_source`` (92,) '<U11'
        A(X) from Asplund, Amarsi & Grevesse 2021 (table 2): the photospheric
        value, the meteoritic one where the photosphere gives none (As, Se, Br,
        Cd, Sb, Te, I, Cs, Ta, Re, Ir, Pt, Hg, Bi, U), NaN where the table has
        neither (Tc, Pm, Po-Ac, Pa); the source array says 'photosphere',
        'meteorites' or 'none'.
    ``elements`` (92,) '<U2' symbols; ``sources`` '<U..' citations.

``linelist_builtin.npz``
    The built-in line list, 3800-9000 A (vacuum), sorted by wavelength:
    * every atomic line (stages I-III) of the VALD3 solar "extract stellar"
      list (central depth >= 0.1 in the Sun) in that range;
    * plus Gaia-ESO v5 lines (nohfs_noiso, air converted to vacuum) in that
      range that VALD lacks. Matching rule: a Gaia-ESO line is "in VALD" when
      a VALD atomic line of the same element and stage lies within 0.02 A
      (vacuum); wavelength and species only, log gf is not compared. Of the
      unmatched Gaia-ESO lines we keep those that pass a strength cut
      somewhere in the label box (``select_lines``):
      ``jaxspec.linelist.strength.max_log_strength`` >= ``STRENGTH_CUT`` when
      that module exists; otherwise the cheap proxy of ``proxy_log_strength``
      (printed as a WARNING). The cut -2.0 keeps lines that reach 1% of the
      continuum opacity somewhere in the box (a flux change of ~0.5% or more).
      Gaia-ESO lines VALD lacks although we predict them deeper than VALD's
      own 0.1 selection in the Sun (solar log eta > ``SOLAR_CONSISTENCY_CUT``)
      are left out as duplicates or inconsistent log gf.
    * lines of species without a partition function are dropped (counted).
    Fields: all ``LineList`` fields (``wave`` and ``vdw`` float64 so that
    wavelengths and packed ABO parameters stay exact; other floats float32;
    ``z``, ``ion``, ``source`` int8) plus ``loggf_offset`` (float32 zeros: the
    per-line calibration offsets, filled in later by a calibration script).

Sources (stored in ``sources``): see ``SOURCES`` below.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    # Build the package in this checkout, whether or not jaxspec is installed.
    sys.path.insert(0, str(REPO / "src"))

from jaxspec.linelist.atomic import AtomicTables  # noqa: E402
from jaxspec.linelist.io import read_moog, read_vald  # noqa: E402
from jaxspec.linelist.linelist import (  # noqa: E402
    ELEMENT_SYMBOLS,
    SOURCE_GES,
    SOURCE_VALD,
    LineList,
)

N_ELEMENTS = 92
N_STAGES = 3
T_JOIN = 1.0e4  # [K] where Barklem & Collet stop and the NIST-levels table takes over
LOG_T_STEP = np.log(10.0) / 80.0
N_T = 120
WAVE_MIN, WAVE_MAX = 3800.0, 9000.0  # [A, vacuum] built-in line list range
MATCH_TOL = 0.02  # [A] GES-VALD wavelength match tolerance, same species
STRENGTH_CUT = -2.0  # log10 line-to-continuum center opacity ratio, max over the label box
#: Gaia-ESO lines absent from VALD's solar extract but predicted with a solar
#: central log10(line/continuum opacity) above this are dropped (see select_lines).
SOLAR_CONSISTENCY_CUT = -0.3

VALD_FILE = "atomic/linelists/vald3_sun_extract_stellar_3000-9000A_vac.vald.gz"
GES_FILE = "atomic/linelists/gaia_eso_v5_atomic_nohfs_noiso_moog_air.list.gz"
BC_PARTITION = "atomic/physics/BarklemCollet2016-atomic_partition.dat"
BC_IONIZATION = "atomic/physics/BarklemCollet2016-ionization_energies.dat"
NIST_PARTITION = "atomic/physics/korg_atomic_partition_funcs_NIST_levels.h5"
NIST_WEIGHTS = "atomic/physics/NIST_atomic_weights_isotopic_compositions.dat"
ASPLUND2021 = "atomic/physics/Asplund2021_solar_abundances.dat"

SOURCES = (
    "VALD3: Ryabchikova et al. 2015, Phys. Scr. 90, 054005; Piskunov et al. 1995, A&AS 112, "
    "525; Kupka et al. 1999, A&AS 138, 119",
    "Gaia-ESO line list v5: Heiter et al. 2021, A&A 645, A106",
    "Partition functions and ionization energies: Barklem & Collet 2016, A&A 588, A96",
    "Partition functions from NIST ASD levels (Kramida et al., NIST Atomic Spectra Database) "
    "via Korg: Wheeler et al. 2023, AJ 165, 68",
    "Atomic weights: Coursey, Schwab, Tsai & Dragoset, NIST Standard Reference Database 144",
    "Solar abundances: Asplund, Amarsi & Grevesse 2021, A&A 653, A141",
)

_ROMAN = {"I": 0, "II": 1, "III": 2}
_Z_OF = {s: i + 1 for i, s in enumerate(ELEMENT_SYMBOLS)}


def default_shared_dir() -> Path:
    """``$JAXSPEC_SHARED_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("JAXSPEC_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


# ---------------------------------------------------------------------------
# atomic tables


def log_t_grid() -> np.ndarray:
    """(120,) ln T [ln K]: 1000 K x 10^(i/80); node 80 is 10^4 K."""
    return np.log(1000.0) + LOG_T_STEP * np.arange(N_T)


def _pchip_log(log_t_nodes, q_nodes, log_t):
    """Monotone cubic interpolation of ln Q in ln T."""
    from scipy.interpolate import PchipInterpolator

    return np.exp(PchipInterpolator(log_t_nodes, np.log(q_nodes), extrapolate=False)(log_t))


def read_bc_partition(path) -> tuple[np.ndarray, dict[tuple[int, int], np.ndarray]]:
    """Barklem & Collet table 8: (T nodes [K], {(Z, stage): Q at the nodes})."""
    temps = None
    table = {}
    for line in Path(path).read_text().splitlines():
        if line.startswith("#"):
            if "T [K]" in line:
                temps = np.array(line.split("]", 1)[1].split(), dtype=np.float64)
            continue
        parts = line.split()
        if not parts:
            continue
        symbol, _, roman = parts[0].partition("_")
        if symbol not in _Z_OF or roman not in _ROMAN:
            continue  # deuterium, negative ions
        table[(_Z_OF[symbol], _ROMAN[roman])] = np.array(parts[1:], dtype=np.float64)
    if temps is None:
        raise ValueError(f"{path}: no '# T [K]' header line")
    return temps, table


def read_nist_partition(path) -> tuple[np.ndarray, dict[tuple[int, int], np.ndarray]]:
    """Korg's NIST-levels table: (ln T nodes, {(Z, stage): Q at the nodes})."""
    import h5py

    with h5py.File(path, "r") as f:
        log_t = f["logT_min"][()] + f["logT_step"][()] * np.arange(
            int(round((f["logT_max"][()] - f["logT_min"][()]) / f["logT_step"][()])) + 1
        )
        table = {}
        for name in f:
            symbol, _, roman = name.partition(" ")
            if symbol in _Z_OF and roman in _ROMAN:
                table[(_Z_OF[symbol], _ROMAN[roman])] = np.asarray(f[name][()], dtype=np.float64)
    for q in table.values():
        if q.shape != log_t.shape:
            raise ValueError(f"{path}: a species has {q.shape} values for {log_t.shape} nodes")
    return log_t, table


def build_partition(shared_dir) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log_t_grid (n_T,), partition (92, 3, n_T), partition_known (92, 3))."""
    shared_dir = Path(shared_dir)
    grid = log_t_grid()
    bc_t, bc = read_bc_partition(shared_dir / BC_PARTITION)
    nist_log_t, nist = read_nist_partition(shared_dir / NIST_PARTITION)
    low = bc_t > 0
    bc_log_t = np.log(bc_t[low])
    log_join = np.log(T_JOIN)
    cool = grid <= log_join + 1e-12
    hot = ~cool

    partition = np.ones((N_ELEMENTS, N_STAGES, grid.size))
    known = np.zeros((N_ELEMENTS, N_STAGES), dtype=bool)
    for z in range(1, N_ELEMENTS + 1):
        for stage in range(N_STAGES):
            key = (z, stage)
            q = partition[z - 1, stage]
            if key in bc:
                q_bc = bc[key][low]
                q[cool] = _pchip_log(bc_log_t, q_bc, grid[cool])
                if key in nist:
                    q_nist_join = _pchip_log(nist_log_t, nist[key], np.array([log_join]))[0]
                    scale = q_bc[-1] / q_nist_join
                    q[hot] = scale * _pchip_log(nist_log_t, nist[key], grid[hot])
                else:
                    q[hot] = q_bc[-1]
                known[z - 1, stage] = True
            elif key in nist:
                q[:] = _pchip_log(nist_log_t, nist[key], grid)
                known[z - 1, stage] = True
    partition[0, 1] = 1.0  # H II: a bare proton
    known[0, 1] = True
    if not np.all(np.isfinite(partition)) or np.any(partition <= 0):
        raise ValueError("partition functions: non-finite or non-positive values after resampling")
    return grid, partition, known


def read_ionization_energies(path) -> np.ndarray:
    """(92, 3) IE1..IE3 [eV]; NaN where B&C give -1."""
    out = np.full((N_ELEMENTS, N_STAGES), np.nan)
    for line in Path(path).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split()
        z = int(parts[0])
        if parts[1] != ELEMENT_SYMBOLS[z - 1]:
            raise ValueError(f"{path}: Z = {z} is labelled {parts[1]!r}")
        values = np.array(parts[2:5], dtype=np.float64)
        out[z - 1] = np.where(values < 0, np.nan, values)
    if np.isnan(out[:, 0]).any():
        raise ValueError(f"{path}: missing first ionization energies")
    return out


_NUMBER = re.compile(r"^\d+(?:\.\d*)?")


def _nist_value(token: str) -> float:
    """'55.845(2)' -> 55.845; '12.000' -> 12.0; '3.0308(21#)' -> 3.0308."""
    m = _NUMBER.match(token)
    if m is None:
        raise ValueError(f"cannot read a number from {token!r}")
    return float(m.group())


def read_atomic_masses(path) -> np.ndarray:
    """(92,) standard atomic weights [amu] from the NIST table (see module docstring)."""
    weights = {}
    isotopes: dict[int, dict[int, float]] = {}
    z = None
    for line in Path(path).read_text().splitlines():
        if not line.strip() or not (line[0].isdigit() or line[0].isspace()):
            continue  # blank, comment, column header, block separator
        toks = [(m.start(), m.group()) for m in re.finditer(r"\S+", line)]
        if line[0].isdigit():
            z = int(toks[0][1])
            mass_number, mass = int(toks[2][1]), _nist_value(toks[3][1])
            # The standard weight starts at column ~46; the isotopic
            # composition (if any) sits before it.
            weight = [t for pos, t in toks[4:] if pos >= 44 and t[0] in "[0123456789"]
            weights[z] = weight[0] if weight else None
        elif z is not None:
            nums = [t for _, t in toks if t[0].isdigit()]
            if len(nums) < 2:
                continue
            mass_number, mass = int(nums[0]), _nist_value(nums[1])
        else:
            continue
        isotopes.setdefault(z, {})[mass_number] = mass
    out = np.full(N_ELEMENTS, np.nan)
    for z in range(1, N_ELEMENTS + 1):
        w = weights.get(z)
        if w is None:
            raise ValueError(f"{path}: no standard atomic weight for Z = {z}")
        if w.startswith("["):
            inner = w.strip("[]").split(",")
            if len(inner) == 2:  # interval: midpoint
                out[z - 1] = 0.5 * (float(inner[0]) + float(inner[1]))
            else:  # [A]: the longest-lived isotope
                out[z - 1] = isotopes[z][int(inner[0])]
        else:
            out[z - 1] = _nist_value(w)
    return out


def read_asplund2021(path) -> tuple[np.ndarray, np.ndarray]:
    """(A(X) (92,), source (92,) '<U11') from Asplund et al. 2021 table 2."""
    value = np.full(N_ELEMENTS, np.nan)
    source = np.full(N_ELEMENTS, "none", dtype="<U11")
    for line in Path(path).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split()
        z = int(parts[0])
        if z > N_ELEMENTS:
            continue
        if parts[1] != ELEMENT_SYMBOLS[z - 1]:
            raise ValueError(f"{path}: Z = {z} is labelled {parts[1]!r}")
        phot, meteor = float(parts[2]), float(parts[4])
        if np.isfinite(phot):
            value[z - 1], source[z - 1] = phot, "photosphere"
        elif np.isfinite(meteor):
            value[z - 1], source[z - 1] = meteor, "meteorites"
    return value, source


def build_tables(shared_dir=None) -> dict[str, np.ndarray]:
    """All arrays of ``atomic_tables.npz`` (see the module docstring)."""
    shared_dir = Path(shared_dir) if shared_dir is not None else default_shared_dir()
    grid, partition, known = build_partition(shared_dir)
    abundance, abundance_source = read_asplund2021(shared_dir / ASPLUND2021)
    return {
        "log_t_grid": grid,
        "partition": partition,
        "partition_known": known,
        "ionization_energy": read_ionization_energies(shared_dir / BC_IONIZATION),
        "atomic_mass": read_atomic_masses(shared_dir / NIST_WEIGHTS),
        "solar_abundance": abundance,
        "solar_abundance_source": abundance_source,
        "elements": np.array(ELEMENT_SYMBOLS[:N_ELEMENTS], dtype="<U2"),
        "sources": np.array(SOURCES),
    }


# ---------------------------------------------------------------------------
# built-in line list


class Candidates(NamedTuple):
    """VALD lines in range, Gaia-ESO lines in range that VALD lacks, and counts."""

    vald: LineList
    ges_new: LineList
    info: dict


def match_species_wavelength(ref: LineList, other: LineList, tol: float = MATCH_TOL) -> np.ndarray:
    """(len(other),) bool: a line of ``ref`` with the same z and ion lies within ``tol`` [A]."""
    # One sorted key per line, species blocks far apart (wave < 1e5 A).
    span = 1e6
    ref_key = (np.asarray(ref.z) * 3 + np.asarray(ref.ion)) * span + np.asarray(ref.wave)
    key = (np.asarray(other.z) * 3 + np.asarray(other.ion)) * span + np.asarray(other.wave)
    ref_key = np.sort(ref_key)
    if ref_key.size == 0:
        return np.zeros(key.shape, dtype=bool)
    j = np.searchsorted(ref_key, key)
    left = ref_key[np.clip(j - 1, 0, ref_key.size - 1)]
    right = ref_key[np.clip(j, 0, ref_key.size - 1)]
    return (np.abs(key - left) <= tol) | (np.abs(right - key) <= tol)


def candidate_lines(shared_dir=None) -> Candidates:
    """Read both lists and split Gaia-ESO into lines VALD has and lines it lacks."""
    shared_dir = Path(shared_dir) if shared_dir is not None else default_shared_dir()
    vald_all, vald_info = read_vald(shared_dir / VALD_FILE, return_info=True)
    ges_all = read_moog(shared_dir / GES_FILE, air=True)
    vald = vald_all.in_range(WAVE_MIN, WAVE_MAX)
    ges = ges_all.in_range(WAVE_MIN, WAVE_MAX)
    matched = match_species_wavelength(vald_all, ges)
    info = {
        "vald_atomic_total": len(vald_all),
        "vald_molecular_skipped": vald_info["skipped_molecules"],
        "vald_in_range": len(vald),
        "ges_total": len(ges_all),
        "ges_in_range": len(ges),
        "ges_matched": int(matched.sum()),
        "ges_unmatched": int((~matched).sum()),
    }
    return Candidates(vald=vald, ges_new=ges.select(~matched), info=info)


# Calibration of the proxy on the VALD solar list: median over its 3,917
# lines with central depth < 0.3 (Z > 2) of log10(d / (1 - d)) minus the
# proxy score at 5500 K without the [Fe/H] term; 10-90% range 10.8-11.5.
PROXY_OFFSET = 11.1


def proxy_log_strength(linelist: LineList, tables: AtomicTables) -> np.ndarray:
    """Cheap stand-in for ``strength.max_log_strength`` (used only when that is absent).

    Approximates log10 of the line-to-continuum center opacity ratio eta as

        loggf + A(X) - 12 + 0.5 + log10 f_stage(T) - (5040 / T) chi + PROXY_OFFSET,

    maximized over T in {4000, 5500, 7500} K. 0.5 is the top of the [Fe/H]
    range; f_stage is the Saha fraction of the element in the line's stage at
    log10 P_e = 1 [dyn cm^-2] from the tables' partition functions and
    ionization energies; ``PROXY_OFFSET`` maps the score onto eta using the
    VALD solar list (eta ~ d / (1 - d) for its central depths d). It ignores
    how the continuum opacity changes with T and P_e, the lower level's share
    of Q, and damping: it only decides which weak Gaia-ESO lines to carry.

    Returns:
        (n_lines,) proxy log10 eta.
    """
    z = np.asarray(linelist.z) - 1
    ion = np.asarray(linelist.ion)
    abund = np.nan_to_num(tables.solar_abundance, nan=-5.0)[z]
    ie = np.nan_to_num(tables.ionization_energy, nan=1e3)
    log_pe = 1.0
    best = np.full(len(linelist), -np.inf)
    for temp in (4000.0, 5500.0, 7500.0):
        theta = 5040.0 / temp
        q = tables.partition[:, :, np.argmin(np.abs(tables.log_t_grid - np.log(temp)))]
        # log10(N_{j+1} / N_j), Saha equation in Gray's form (P_e in dyn cm^-2).
        log_ratio = (
            np.log10(q[:, 1:] / q[:, :-1])
            + 2.5 * np.log10(temp)
            - theta * ie[:, :2]
            - 0.1762
            - log_pe
        )
        log_n = np.zeros((N_ELEMENTS, N_STAGES))
        log_n[:, 1] = log_ratio[:, 0]
        log_n[:, 2] = log_ratio[:, 0] + log_ratio[:, 1]
        log_n -= np.log10(np.sum(10.0 ** np.clip(log_n, -300, 300), axis=1, keepdims=True))
        score = (
            np.asarray(linelist.loggf)
            + abund
            - 12.0
            + 0.5
            + log_n[z, ion]
            - theta * np.asarray(linelist.chi)
            + PROXY_OFFSET
        )
        best = np.maximum(best, score)
    return best


def select_lines(candidates: Candidates, tables: AtomicTables) -> tuple[LineList, dict]:
    """VALD lines plus the Gaia-ESO lines VALD lacks that pass the strength cut.

    Returns the merged, sorted list (species without a partition function
    dropped) and a dict of counts including ``strength_method``.
    """
    ges = candidates.ges_new
    try:
        from jaxspec.linelist.strength import max_log_strength
    except ImportError:
        print(
            "WARNING: jaxspec.linelist.strength not found; selecting Gaia-ESO lines with the "
            "cheap proxy of proxy_log_strength (rebuild once the strength module exists)"
        )
        method = "proxy"
        strength_fn = proxy_log_strength
    else:
        method = "jaxspec.linelist.strength.max_log_strength"
        strength_fn = max_log_strength

    known = np.asarray(tables.partition_known)

    def _known(ll):
        return known[np.asarray(ll.z) - 1, np.asarray(ll.ion)]

    vald_ok = _known(candidates.vald)
    ges_ok = _known(ges)
    ges = ges.select(ges_ok)
    strength = np.asarray(strength_fn(ges, tables), dtype=np.float64)
    keep = strength >= STRENGTH_CUT
    if method != "proxy":
        # Solar consistency: the VALD extract lists every line VALD predicts
        # deeper than 0.1 in a 5750 K / 4.0 / 0.0 model (in our model those
        # reach log eta >= -1 at these labels). A Gaia-ESO line missing from it
        # that we predict clearly deeper (log eta > SOLAR_CONSISTENCY_CUT) is a
        # duplicate with a larger wavelength mismatch or has an inconsistent
        # log gf, so it is left out.
        sun = np.asarray(
            strength_fn(ges, tables, bounds={"teff": (5750.0, 5750.0), "logg": (4.0, 4.0),
                                             "feh": (0.0, 0.0)}),
            dtype=np.float64,
        )
        inconsistent = keep & (sun > SOLAR_CONSISTENCY_CUT)
        keep &= ~inconsistent
    else:
        inconsistent = np.zeros_like(keep)
    merged = LineList.concatenate([candidates.vald.select(vald_ok), ges.select(keep)]).sorted()
    info = {
        "strength_method": method,
        "strength_cut": STRENGTH_CUT,
        "vald_dropped_unknown_partition": int((~vald_ok).sum()),
        "ges_dropped_unknown_partition": int((~ges_ok).sum()),
        "ges_added": int(keep.sum()),
        "ges_dropped_solar_inconsistent": int(inconsistent.sum()),
        "n_lines": len(merged),
    }
    return merged, info


def write_linelist(linelist: LineList, path, loggf_offset=None) -> None:
    """Write the line list (and per-line log gf offsets, zeros by default) to ``path``."""
    n = len(linelist)
    offset = (
        np.zeros(n, np.float32) if loggf_offset is None else np.asarray(loggf_offset, np.float32)
    )
    if offset.shape != (n,):
        raise ValueError(f"loggf_offset has shape {offset.shape}, expected ({n},)")
    np.savez_compressed(
        path,
        wave=np.asarray(linelist.wave, np.float64),
        z=np.asarray(linelist.z, np.int8),
        ion=np.asarray(linelist.ion, np.int8),
        chi=np.asarray(linelist.chi, np.float32),
        loggf=np.asarray(linelist.loggf, np.float32),
        log_gamma_rad=np.asarray(linelist.log_gamma_rad, np.float32),
        log_gamma_stark=np.asarray(linelist.log_gamma_stark, np.float32),
        vdw=np.asarray(linelist.vdw, np.float64),
        source=np.asarray(linelist.source, np.int8),
        loggf_offset=offset,
    )


def _summary(linelist: LineList, paths) -> None:
    src = np.asarray(linelist.source)
    print(f"built-in line list: {len(linelist)} lines")
    for code, name in ((SOURCE_VALD, "VALD3"), (SOURCE_GES, "Gaia-ESO")):
        print(f"  {name:9s} {int((src == code).sum()):7d}")
    edges = np.append(np.arange(WAVE_MIN, WAVE_MAX, 500.0), WAVE_MAX)
    counts_v = np.histogram(linelist.wave[src == SOURCE_VALD], edges)[0]
    counts_g = np.histogram(linelist.wave[src == SOURCE_GES], edges)[0]
    print("  per 500 A (vacuum):      VALD   GES")
    for lo, cv, cg in zip(edges[:-1], counts_v, counts_g, strict=True):
        print(f"    {lo:6.0f}-{min(lo + 500, WAVE_MAX):6.0f}     {cv:6d} {cg:6d}")
    for p in paths:
        print(f"  {p}: {Path(p).stat().st_size / 1e6:.3f} MB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared-dir",
        type=Path,
        default=None,
        help="shared data dir (default $JAXSPEC_SHARED_DATA or <repo>/../shared/data)",
    )
    parser.add_argument("--out-dir", type=Path, default=REPO / "src" / "jaxspec" / "data")
    args = parser.parse_args(argv)
    shared_dir = args.shared_dir or default_shared_dir()
    if not (shared_dir / "atomic").is_dir():
        parser.error(f"no atomic/ folder under {shared_dir}; pass --shared-dir")
    args.out_dir.mkdir(parents=True, exist_ok=True)

    arrays = build_tables(shared_dir)
    tables_path = args.out_dir / "atomic_tables.npz"
    np.savez_compressed(tables_path, **arrays)
    tables = AtomicTables.from_mapping(arrays)
    print(f"atomic tables: {int(tables.partition_known.sum())} species with partition functions")

    candidates = candidate_lines(shared_dir)
    for key, value in candidates.info.items():
        print(f"  {key}: {value}")
    linelist, info = select_lines(candidates, tables)
    for key, value in info.items():
        print(f"  {key}: {value}")
    list_path = args.out_dir / "linelist_builtin.npz"
    write_linelist(linelist, list_path)
    _summary(linelist, [tables_path, list_path])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
