"""Plots of a :class:`~jaxspec.infer.BinaryPosterior`: corner plot and fit with bands.

matplotlib and corner are optional (``pip install jaxspec-sb2[plot]``) and
imported only here, only when a plot is made.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_corner", "plot_fit"]

# "#" stands for the component number
_COMPONENT = {"teff": r"$T_{\rm eff,#}$", "logg": r"$\log g_#$", "rv": r"$v_{r,#}$", "vsini": r"$v \sin i_#$"}
_SHARED = {"feh": "[Fe/H]", "flux_ratio": "flux ratio", "error_scale": "error scale"}


def _label(name: str, unit: str) -> str:
    """Axis label with the unit: ``teff_1`` -> ``$T_{\rm eff,1}$ [K]``."""
    stem, comp = (name[:-2], name[-1]) if name[-2:] in ("_1", "_2") else (name, "")
    if comp and stem in _COMPONENT:
        text = _COMPONENT[stem].replace("#", comp)
    else:
        text = _SHARED.get(name, name)
    return f"{text} [{unit}]" if unit else text


def _import_plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plots need matplotlib (and corner): pip install 'jaxspec-sb2[plot]'") from e
    return plt


def plot_corner(post, path=None, *, truths=None, names=None, mode=None, **kwargs):
    """Corner plot of the posterior draws.

    Args:
        post: a :class:`~jaxspec.infer.BinaryPosterior`.
        path: file to write (the figure is then closed), or None to return it open.
        truths: optional ``{name: value}`` drawn as lines.
        names: parameters to show (default: all sampled ones).
        mode: show only this mode's chains (default: all chains; a multimodal
            posterior's modes are coloured in the title).
        **kwargs: passed to ``corner.corner``.

    Returns:
        The matplotlib figure.

    Raises:
        ImportError: corner or matplotlib missing. ValueError: unknown names.
    """
    plt = _import_plt()
    try:
        import corner
    except ImportError as e:
        raise ImportError("plot_corner needs the corner package: pip install 'jaxspec-sb2[plot]'") from e
    names = tuple(post.names if names is None else names)
    unknown = [n for n in names if n not in post.samples]
    if unknown:
        raise ValueError(f"unknown parameters {unknown}; sampled are {post.names}")
    samples = post.samples if mode is None else post.mode_samples(mode)
    units = dict(zip(post.names, post.units, strict=True))
    data = np.stack([np.asarray(samples[n]).ravel() for n in names], axis=1)
    # Parameters that did not move (a fixed value, a bound) break corner's histograms.
    span = np.ptp(data, axis=0)
    ranges = [(c.min() - 0.5, c.max() + 0.5) if s == 0 else 0.999 for c, s in zip(data.T, span, strict=True)]
    opts = {"labels": [_label(n, units[n]) for n in names], "show_titles": True, "title_fmt": ".3g",
            "quantiles": [0.16, 0.5, 0.84], "range": ranges, "title_kwargs": {"fontsize": 8},
            "label_kwargs": {"fontsize": 9}}
    if truths is not None:
        opts["truths"] = [truths.get(n) for n in names]
    opts.update(kwargs)
    fig = corner.corner(data, **opts)
    text = f"{post.num_chains} chains x {post.num_draws} draws, {post.flag_message}"
    if post.multimodal:
        text += "; " + "; ".join(f"mode {k}: chains {m['chains']} weight {m['weight']:.2f}"
                                 for k, m in enumerate(post.modes))
    fig.suptitle(text, fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=90)
        plt.close(fig)
    return fig


def plot_fit(post, path=None):
    """Data, posterior-median model, both stars' contributions, the model's 68 and 95 % bands,
    the 95 % posterior predictive band (model plus noise), and residuals.

    Args:
        post: a :class:`~jaxspec.infer.BinaryPosterior`.
        path: file to write (the figure is then closed), or None to return it open.

    Returns:
        The matplotlib figure.
    """
    plt = _import_plt()
    w = post.wave
    good = post.ivar > 0
    fig, ax = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=(3, 1))
    ax[0].fill_between(w, *post.predictive_band, color="0.85", lw=0, label="95% posterior predictive")
    ax[0].fill_between(w, post.model_band[0], post.model_band[3], color="C3", alpha=0.3, lw=0,
                       label="model 95%")
    ax[0].plot(w[good], post.flux[good], "k", lw=0.5, label="data")
    ax[0].plot(w, post.model_median, "C3", lw=0.7, label="posterior median model")
    ax[0].plot(w, post.model_1 + 0.5 * post.continuum, "C0", lw=0.5, label="star 1 (offset)")
    ax[0].plot(w, post.model_2 + 0.2 * post.continuum, "C2", lw=0.5, label="star 2 (offset)")
    q = {n: np.median(post.samples[n]) for n in ("rv_1", "rv_2", "flux_ratio") if n in post.samples}
    title = ", ".join(f"{n} {v:.3g}" for n, v in q.items())
    ax[0].set_title(f"posterior medians: {title}; {post.flag_message}", fontsize=9)
    ax[0].legend(fontsize=7, loc="lower left", ncol=3)
    ax[0].set_ylabel("flux")
    res = post.flux - post.model_median
    sig = np.where(good, 1.0 / np.sqrt(np.where(good, post.ivar, 1.0)), np.nan)
    ax[1].fill_between(w, -2 * sig, 2 * sig, color="0.85", lw=0, label="2 sigma")
    ax[1].fill_between(w, post.model_band[0] - post.model_median, post.model_band[3] - post.model_median,
                       color="C3", alpha=0.4, lw=0, label="model 95%")
    ax[1].plot(w[good], res[good], "k", lw=0.4)
    ax[1].set_ylabel("data - median")
    ax[1].set_xlabel("vacuum wavelength [A]")
    ax[1].legend(fontsize=7, loc="lower left", ncol=2)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
