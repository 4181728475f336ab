"""A survey map to explore in a browser: every spectrum of a stack embedded in 2-D, one HTML page.

:func:`write_map` reads an HDF5 stack (``jaxspec pack``) chunk by chunk, embeds each
spectrum with the bundled amortized network's penultimate layer
(:meth:`jaxspec.amortized.AmortizedPredictor.features`), reduces the embeddings to 2-D with
t-SNE (openTSNE, FFT-accelerated; ``pip install ".[map]"``), and writes one self-contained
HTML page (no external scripts): points coloured by any column (the network's predictions,
or a results table of ``jaxspec survey`` matched by id), a tooltip with the id and the
columns on hover, and on a click the spectrum with its binary fit (the results table's
parameters, or else the network's prediction) drawn below the map.

The page exposes ``window.mapReady``, ``window.mapPointScreen(i)`` (page coordinates of
point ``i``) and ``window.mapSelected`` (the id shown) for browser tests.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np

__all__ = ["embed_stack", "write_map"]

#: Flux range [normalized] of the 8-bit spectra stored in the page.
_FLUX_MAX = 1.25


def embed_stack(path, *, predictor=None, chunk: int = 2048, perplexity: float = 30.0, seed: int = 0,
                progress: bool = True) -> dict:
    """Network features of every spectrum of a stack and their 2-D t-SNE embedding.

    Args:
        path: an HDF5 stack (:func:`jaxspec.io.write_stack` / ``jaxspec pack``) whose grid
            covers the network's (resampled onto it).
        predictor: an :class:`~jaxspec.amortized.AmortizedPredictor` (default: bundled).
        chunk: spectra read per step.
        perplexity: t-SNE perplexity (capped at (N - 1) / 3 for small stacks).
        seed: t-SNE random state.
        progress: tqdm progress bars.

    Returns:
        dict with ``ids`` (N,), ``xy`` (N, 2) map coordinates, ``inputs`` (N, P) the network
        inputs (normalized flux minus 1 on the network's grid), ``prediction`` (the
        network's dict of (N,) arrays) and ``wave`` (P,) [A].

    Raises:
        ImportError: openTSNE is not installed (the message says how to install it).
        ValueError: an unreadable stack or a grid the network cannot use.
    """
    try:
        from openTSNE import TSNE
    except ImportError as err:
        raise ImportError('the survey map needs openTSNE: pip install ".[map]" (or pip install openTSNE)') from err
    from jaxspec.amortized import default_predictor
    from jaxspec.io.stack import read_stack, stack_info

    pred = default_predictor() if predictor is None else predictor
    n = int(stack_info(path)["n"])
    ids, inputs = [], []
    rng = range(0, n, chunk)
    if progress:
        from tqdm.auto import tqdm

        rng = tqdm(rng, desc="embed", unit="chunk")
    for a in rng:
        s = read_stack(path, a, min(a + chunk, n))
        inputs.append(pred.inputs(s.flux, s.wave, err=s.err, ivar=s.ivar))
        ids.extend(str(i) for i in s.ids)
    x = np.concatenate(inputs)
    feats = pred.features(x)
    mean, log_sigma, logit = pred.raw(x)
    prediction = _prediction(pred, mean, log_sigma, logit)
    perp = float(min(perplexity, max((len(x) - 1) / 3.0, 1.0)))
    emb = TSNE(perplexity=perp, random_state=seed, n_jobs=-1, verbose=bool(progress)).fit(feats.astype(np.float64))
    return {"ids": np.asarray(ids), "xy": np.asarray(emb, np.float64), "inputs": x, "prediction": prediction,
            "wave": pred.wave}


def _prediction(pred, mean, log_sigma, logit) -> dict:
    from jaxspec.amortized.net import TARGETS, swap_stars

    y, _ = pred.unscale(mean, log_sigma)
    y = np.where((y[:, -1] > 0.5)[:, None], swap_stars(y), y)
    out = {t: y[:, k] for k, t in enumerate(TARGETS)}
    share = np.clip(out["share"], 0.0, 0.5)
    out["flux_ratio"] = share / (1.0 - share)
    out["p_binary"] = 1.0 / (1.0 + np.exp(-logit))
    return out


def _models(params: dict, wave, resolution, batch: int = 256) -> np.ndarray:
    """Binary-model spectra (N, P) on the network's grid for parameter columns (clipped to bounds)."""
    import jax
    import jax.numpy as jnp

    import jaxspec
    from jaxspec.models import BinaryModel

    bm = BinaryModel(jaxspec.default_model(), wave, resolution=resolution, rv_max=300.0, vsini_max=100.0)
    n = len(next(iter(params.values())))
    th = {}
    for name in bm.spec.names:
        p = bm.spec[name]
        v = np.asarray(params.get(name, np.full(n, 0.5 * (p.lower + p.upper))), np.float64)
        v = np.where(np.isfinite(v), v, 0.5 * (p.lower + p.upper))
        m = 1e-3 * (p.upper - p.lower)
        th[name] = np.clip(v, p.lower + m, p.upper - m)
    f = jax.jit(jax.vmap(bm.flux))
    return np.concatenate([np.asarray(f({k: jnp.asarray(v[a:a + batch]) for k, v in th.items()}))
                           for a in range(0, n, batch)])


def _b64(a) -> str:
    q = np.clip(np.round(np.nan_to_num(a, nan=1.0) / _FLUX_MAX * 255.0), 0, 255).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode()


def write_map(stack, out, *, results=None, color: str | None = None, predictor=None, n_plot: int = 400,
              progress: bool = True, **embed_options) -> dict:
    """Write the survey map of a stack as one self-contained HTML page.

    Args:
        stack: an HDF5 stack (``jaxspec pack``).
        out: the HTML file to write.
        results: optional results table of ``jaxspec survey`` (FITS, HDF5 or ECSV), matched
            to the stack by id: its columns colour the points and its parameters draw the fit.
        color: the column that colours the points at first (default ``is_binary`` if there,
            else ``p_binary``); the page has a menu for the others.
        predictor: an :class:`~jaxspec.amortized.AmortizedPredictor` (default: bundled).
        n_plot: pixels of the spectra drawn in the page (the network's grid is binned to it).
        progress: tqdm progress bars.
        **embed_options: passed to :func:`embed_stack` (chunk, perplexity, seed).

    Returns:
        ``{"n", "seconds", "bytes", "columns"}`` of the page written.

    Raises:
        ValueError: a results table without an ``id`` column, ids that match no spectrum,
            or an unknown ``color`` column.
    """
    t0 = time.perf_counter()
    from jaxspec.amortized import default_predictor

    pred = default_predictor() if predictor is None else predictor
    emb = embed_stack(stack, predictor=pred, progress=progress, **embed_options)
    ids = emb["ids"]
    n = ids.size
    columns = {k: emb["prediction"][k] for k in ("p_binary", "teff_1", "teff_2", "rv_1", "rv_2", "flux_ratio")}
    model_label = "network prediction"
    params = emb["prediction"]
    if results is not None:
        from jaxspec.io.results import read_results

        tab = read_results(results)
        if "id" not in tab.colnames:
            raise ValueError(f"{results}: the results table has no 'id' column")
        row = {str(v): i for i, v in enumerate(tab["id"])}
        idx = np.array([row.get(str(i), -1) for i in ids])
        if not np.any(idx >= 0):
            raise ValueError(f"{results}: none of its ids matches a spectrum of {stack}")
        params = {}
        for name in tab.colnames:
            col = np.asarray(tab[name])
            if col.dtype.kind in "biuf" and col.ndim == 1:
                v = np.where(idx >= 0, col[np.maximum(idx, 0)].astype(np.float64), np.nan)
                columns[name] = v
                params[name] = v
        model_label = "binary fit"
    color = color or ("is_binary" if "is_binary" in columns else "p_binary")
    if color not in columns:
        raise ValueError(f"unknown color column {color!r}; columns are {sorted(columns)}")
    models = _models(params, emb["wave"], pred.resolution)
    bins = max(emb["wave"].size // int(n_plot), 1)
    keep = emb["wave"].size // bins * bins

    def binned(a):
        return a[:, :keep].reshape(a.shape[0], -1, bins).mean(-1)

    data = {
        "ids": [str(i) for i in ids],
        "x": np.round(emb["xy"][:, 0], 3).tolist(), "y": np.round(emb["xy"][:, 1], 3).tolist(),
        "columns": {k: [None if not np.isfinite(v) else round(float(v), 4) for v in np.asarray(c, np.float64)]
                    for k, c in columns.items()},
        "color": color, "wave": np.round(binned(emb["wave"][None])[0], 2).tolist(), "npix": int(keep // bins),
        "spec": _b64(binned(emb["inputs"] + 1.0)), "model": _b64(binned(models)), "fmax": _FLUX_MAX,
        "model_label": model_label, "title": f"jaxspec survey map: {Path(str(stack)).name}, {n:,} spectra",
    }
    html = _PAGE.replace("__DATA__", json.dumps(data, separators=(",", ":")))
    Path(out).write_text(html, encoding="utf-8")
    return {"n": int(n), "seconds": time.perf_counter() - t0, "bytes": len(html.encode()), "columns": sorted(columns)}


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>jaxspec survey map</title>
<style>
body{font-family:sans-serif;margin:12px;color:#222} #tip{position:absolute;pointer-events:none;background:#fff;
border:1px solid #888;padding:4px 6px;font-size:12px;display:none;white-space:pre} canvas{border:1px solid #ccc}
</style></head><body>
<h3 id="title"></h3>
<div>colour by <select id="col"></select> <span id="legend"></span></div>
<canvas id="map" width="760" height="560"></canvas>
<div>selected: <b id="selected">(click a point)</b></div>
<canvas id="spec" width="760" height="260"></canvas>
<div id="tip"></div>
<script>
const D = __DATA__;
const N = D.ids.length, P = D.npix;
function dec(s){const b=atob(s);const a=new Uint8Array(b.length);for(let i=0;i<b.length;i++)a[i]=b.charCodeAt(i);return a;}
const SPEC = dec(D.spec), MODEL = dec(D.model);
const map = document.getElementById('map'), ctx = map.getContext('2d');
const W = map.width, H = map.height, pad = 20;
let xmin=Infinity,xmax=-Infinity,ymin=Infinity,ymax=-Infinity;
for(let i=0;i<N;i++){xmin=Math.min(xmin,D.x[i]);xmax=Math.max(xmax,D.x[i]);ymin=Math.min(ymin,D.y[i]);ymax=Math.max(ymax,D.y[i]);}
const sx = i => pad + (D.x[i]-xmin)/((xmax-xmin)||1)*(W-2*pad);
const sy = i => H - pad - (D.y[i]-ymin)/((ymax-ymin)||1)*(H-2*pad);
const STOPS=[[68,1,84],[59,82,139],[33,145,140],[94,201,98],[253,231,37]];
function cmap(t){if(!(t>=0))return 'rgb(190,190,190)';t=Math.min(Math.max(t,0),1)*(STOPS.length-1);
 const k=Math.min(Math.floor(t),STOPS.length-2),f=t-k,a=STOPS[k],b=STOPS[k+1];
 return 'rgb('+a.map((v,j)=>Math.round(v+(b[j]-v)*f)).join(',')+')';}
let current = D.color;
function draw(){
 const c = D.columns[current]; let lo=Infinity,hi=-Infinity;
 for(const v of c){if(v!==null){lo=Math.min(lo,v);hi=Math.max(hi,v);}}
 ctx.clearRect(0,0,W,H);
 for(let i=0;i<N;i++){const v=c[i];ctx.fillStyle=cmap(v===null?NaN:(v-lo)/((hi-lo)||1));
  ctx.beginPath();ctx.arc(sx(i),sy(i),2.2,0,6.2832);ctx.fill();}
 document.getElementById('legend').textContent = current+': '+lo.toPrecision(4)+' (purple) to '+hi.toPrecision(4)+' (yellow)';
}
const sel = document.getElementById('col');
for(const k of Object.keys(D.columns)){const o=document.createElement('option');o.value=k;o.textContent=k;if(k===current)o.selected=true;sel.appendChild(o);}
sel.onchange = () => {current = sel.value; draw();};
function nearest(ev){const r=map.getBoundingClientRect();const mx=ev.clientX-r.left,my=ev.clientY-r.top;
 let best=-1,bd=64;for(let i=0;i<N;i++){const dx=sx(i)-mx,dy=sy(i)-my,d=dx*dx+dy*dy;if(d<bd){bd=d;best=i;}}return best;}
const tip = document.getElementById('tip');
map.onmousemove = ev => {const i=nearest(ev);if(i<0){tip.style.display='none';return;}
 let t=D.ids[i];for(const k of Object.keys(D.columns)){const v=D.columns[k][i];if(v!==null)t+='\n'+k+' = '+v;}
 tip.textContent=t;tip.style.left=(ev.pageX+12)+'px';tip.style.top=(ev.pageY+12)+'px';tip.style.display='block';};
map.onmouseleave = () => {tip.style.display='none';};
const sc = document.getElementById('spec'), sctx = sc.getContext('2d');
const YLO=0.3, YHI=1.15;
function curve(arr,i,col){const w=sc.width,h=sc.height;sctx.strokeStyle=col;sctx.beginPath();
 for(let p=0;p<P;p++){const f=arr[i*P+p]/255*D.fmax;const X=40+p/(P-1)*(w-50),Y=h-25-((f-YLO)/(YHI-YLO))*(h-40);
  if(p===0)sctx.moveTo(X,Y);else sctx.lineTo(X,Y);}sctx.stroke();}
function show(i){sctx.clearRect(0,0,sc.width,sc.height);sctx.fillStyle='#222';sctx.font='12px sans-serif';
 sctx.fillText(D.ids[i]+'  (black: spectrum, red: '+D.model_label+'; '+D.wave[0]+'-'+D.wave[P-1]+' A)',40,14);
 curve(SPEC,i,'#000');curve(MODEL,i,'#d62728');
 window.mapSelected = D.ids[i];document.getElementById('selected').textContent = D.ids[i];}
map.onclick = ev => {const i=nearest(ev);if(i>=0)show(i);};
window.mapPointScreen = i => {const r=map.getBoundingClientRect();return {x:r.left+window.scrollX+sx(i),y:r.top+window.scrollY+sy(i)};};
document.getElementById('title').textContent = D.title;
draw(); window.mapSelected = null; window.mapReady = true;
</script></body></html>
"""
