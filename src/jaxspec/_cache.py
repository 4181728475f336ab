"""Opt-in persistent JAX compilation cache.

Compiling the generator and the fitters takes seconds; with the persistent
cache a second process reuses the compiled programs. The library does not
change JAX's global configuration on import; the command line turns the
cache on, and users can call :func:`enable_compilation_cache` themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["enable_compilation_cache", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$JAXSPEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxspec/jax``, else ``~/.cache/jaxspec/jax``."""
    if os.environ.get("JAXSPEC_CACHE_DIR"):
        return Path(os.environ["JAXSPEC_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "jaxspec" / "jax"


def enable_compilation_cache(path=None, *, min_compile_time_secs: float = 0.5) -> Path:
    """Turn on JAX's persistent compilation cache in ``path`` (default: :func:`default_cache_dir`).

    Leaves an already configured cache directory untouched (and then ignores
    both arguments).

    Args:
        path: cache directory, created if missing.
        min_compile_time_secs: only programs that took at least this long [s]
            to compile are cached (JAX's
            ``jax_persistent_cache_min_compile_time_secs``; default 0.5).

    Returns:
        The cache directory in use.
    """
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    path = Path(path) if path is not None else default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time_secs)
    return path
