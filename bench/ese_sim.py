"""Simulated DSA-110 light curves for the ESE benches (injection, null calibration, throughput).

The model is the injection bench's (``bench/ese_injection.py`` docstring states every
choice); ``CADENCES`` lists the images' times it can draw (``daily``: the throughput bench's
coarser stated cadence; ``sparse``: a source seen every ~3 days, to measure what the
detector and its live table, made at the demo cadence, do on another); ``cut_fraction``
places that fraction of the ESEs so the start or the end of the data cuts them (half
each): end-cut dips start (half depth) at least 30 d after the first epoch and reach it at
most 0.4 W after the last; start-cut dips recover (their centre + 0.9 W + 15 d) inside the
data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dsa110.science.ese_tracker import SIDEREAL_DAY
from dsa110.science.plasma_lens import CAUSTIC_ALPHA, LensCurve, gain_curve

T0 = 60000.0
DAYS = 365
CLASSES = ("steady", "ese", "flare", "fade", "step", "outlier", "short_dip")
CONFUSERS = CLASSES[2:]
FIELD_RA, FIELD_DEC = 150.0, 40.0
IMAGES_PER_TRANSACTION = 40


@dataclass
class SimSource:
    index: int
    kind: str
    flux_jy: float
    snr: float
    red_rms: float = 0.0
    red_tau: float = 0.0
    params: dict[str, float] = field(default_factory=dict)
    ra_deg: float = FIELD_RA
    dec_deg: float = FIELD_DEC


@dataclass
class Simulation:
    image_mjd: np.ndarray  # (n_images,)
    sources: list[SimSource]
    flux: np.ndarray  # (n_sources, n_images), NaN where not measured
    err: np.ndarray


ESE_SHAPES = ("dip", "lens")
"""``dip``: the injection bench's Gaussian dip with optional caustic spikes (its docstring);
``lens``: the light curve of a Gaussian plasma lens (``dsa110.science.plasma_lens``: flat floors,
tall caustics and bright shoulders the dip does not have), each event's depth and FWHM
those its lens makes, FWHM drawn as the dip's."""

CADENCES = ("demo", "daily", "sparse")
"""``demo``: the injection bench's (its docstring); ``daily``: one image per sidereal day, no
gaps; ``sparse``: the demo's outages, each other day observed with probability 1/3 and one
image on it (a source seen every ~3 days, ~110 epochs a year instead of ~640)."""


def _cadence(rng: np.random.Generator, cadence: str = "demo") -> np.ndarray:
    if cadence == "daily":
        return T0 + np.arange(DAYS) * SIDEREAL_DAY
    if cadence not in CADENCES:
        raise ValueError(f"cadence {cadence!r}: one of {CADENCES}")
    observed = rng.random(DAYS) >= (0.08 if cadence == "demo" else 2 / 3)
    for _ in range(int(rng.integers(3, 6))):
        start = int(rng.integers(0, DAYS))
        observed[start : start + int(rng.integers(2, 13))] = False
    epochs: list[float] = []
    for day in np.flatnonzero(observed):
        n = int(rng.choice([1, 2, 3], p=[0.35, 0.40, 0.25])) if cadence == "demo" else 1
        epochs.extend(T0 + day * SIDEREAL_DAY + 0.0035 * k for k in range(n))
    return np.asarray(epochs)


def _drw(rng: np.random.Generator, t: np.ndarray, rms: float, tau: float) -> np.ndarray:
    x = np.empty_like(t)
    x[0] = rms * rng.standard_normal()
    for i in range(1, t.size):
        decay = math.exp(-(t[i] - t[i - 1]) / tau)
        x[i] = x[i - 1] * decay + rms * math.sqrt(1 - decay * decay) * rng.standard_normal()
    return x


def _gauss(t: np.ndarray, centre: float, fwhm: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) * 2.3548200450309493 / fwhm) ** 2)


def _lens_event(rng: np.random.Generator, src: SimSource) -> LensCurve:
    """A Gaussian plasma lens (``dsa110.science.plasma_lens``): strength alpha log-uniform 0.1-30
    (dips ~9-97 % deep, caustics above 2.24) and source size beta log-uniform 0.05-1 lens
    radii; its depth and FWHM (as the lens makes them) go in ``src.params``."""
    alpha = float(np.exp(rng.uniform(np.log(0.1), np.log(30.0))))
    beta = float(np.exp(rng.uniform(np.log(0.05), np.log(1.0))))
    lens = gain_curve(alpha, beta)
    src.params.update(alpha=alpha, beta=beta, depth=lens.depth)
    return lens


def _shape(rng: np.random.Generator, src: SimSource, t: np.ndarray, ese_shape: str = "dip") -> np.ndarray:
    """Multiplicative light-curve shape of one source's class (1 = steady); an ESE is a
    Gaussian dip (``dip``) or a Gaussian plasma lens's light curve (``lens``, ``ESE_SHAPES``)."""
    p = src.params
    if src.kind == "ese":
        lens = _lens_event(rng, src) if ese_shape == "lens" else None
        fwhm = float(np.exp(rng.uniform(np.log(14), np.log(180))))
        lo, hi = T0 + 0.9 * fwhm + 15, T0 + DAYS - 0.9 * fwhm - 15
        if p.get("cut", 0.0) > 0:  # cut by the end: onset inside, recovery not complete
            lo, hi = max(T0 + DAYS - 0.5 * fwhm, T0 + 30 + 0.5 * fwhm), T0 + DAYS + 0.4 * fwhm
        elif p.get("cut", 0.0) < 0:  # cut by the start: ingress before the first epoch
            lo, hi = T0 - 0.4 * fwhm, min(T0 + 0.5 * fwhm, T0 + DAYS - 0.9 * fwhm - 15)
        if lens is not None:
            p.update(fwhm=fwhm, t0=rng.uniform(lo, hi), caustic=float(p["alpha"] > CAUSTIC_ALPHA))
            return lens.at((t - p["t0"]) * lens.fwhm_u / fwhm)
        p.update(
            depth=rng.uniform(0.1, 0.9), fwhm=fwhm, t0=rng.uniform(lo, hi), caustic=float(rng.random() < 0.5)
        )
        s = 1 - p["depth"] * _gauss(t, p["t0"], fwhm)
        if p["caustic"]:
            amp = rng.uniform(0.1, 0.5)
            for side in (-1, 1):
                s = s + amp * _gauss(t, p["t0"] + side * 0.75 * fwhm, 0.08 * fwhm)
        return s
    if src.kind == "flare":
        tp, amp = rng.uniform(T0, T0 + DAYS), rng.uniform(0.2, 2.0)
        rise, decay = rng.uniform(1, 5), rng.uniform(5, 60)
        p.update(t0=tp, amp=amp)
        return 1 + amp * np.where(t < tp, np.exp((t - tp) / rise), np.exp(-(t - tp) / decay))
    if src.kind == "fade":
        ts, drop, length = rng.uniform(T0 + 30, T0 + 300), rng.uniform(0.2, 0.6), rng.uniform(30, 200)
        p.update(t0=ts, drop=drop, length=length)
        return 1 - drop * np.clip((t - ts) / length, 0, 1)
    if src.kind == "step":
        ts, size = rng.uniform(T0 + 30, T0 + DAYS - 30), rng.uniform(0.15, 0.5) * rng.choice([-1, 1])
        p.update(t0=ts, size=size)
        return np.asarray(1 + size * (t >= ts), dtype=np.float64)
    if src.kind == "outlier":
        s = np.ones_like(t)
        for i in rng.choice(t.size, size=int(rng.integers(1, 4)), replace=False):
            s[i] *= 1 + (rng.uniform(-0.9, -0.3) if rng.random() < 0.5 else rng.uniform(0.3, 1.0))
        return s
    if src.kind == "short_dip":
        fwhm, depth = rng.uniform(1, 5), rng.uniform(0.2, 0.9)
        p.update(t0=rng.uniform(T0 + 10, T0 + DAYS - 10), fwhm=fwhm, depth=depth)
        return 1 - depth * _gauss(t, p["t0"], fwhm)
    return np.ones_like(t)


def simulate(
    seed: int,
    n_sources: int,
    *,
    cadence: str = "demo",
    cut_fraction: float = 0.0,
    steady_only: bool = False,
    mix: tuple[float, float] = (0.45, 0.30),
    ese_shape: str = "dip",
) -> Simulation:
    """``mix``: the steady and ESE fractions; the rest is split evenly between confusers;
    ``ese_shape``: one of ``ESE_SHAPES``."""
    if ese_shape not in ESE_SHAPES:
        raise ValueError(f"ESE shape {ese_shape!r}: one of {ESE_SHAPES}")
    rng = np.random.default_rng(seed)
    cut_rng = np.random.default_rng(seed + 10_000)  # its own stream: uncut seeds stay as they were
    t = _cadence(rng, cadence)
    gains = 1 + rng.uniform(0.02, 0.05, t.size) * rng.standard_normal(t.size)
    weights = {"steady": 1.0 if steady_only else mix[0], "ese": 0.0 if steady_only else mix[1]}
    kinds = ["steady"] * round(n_sources * weights["steady"]) + ["ese"] * round(n_sources * weights["ese"])
    per_confuser = (n_sources - len(kinds)) // len(CONFUSERS)
    for kind in CONFUSERS:
        kinds += [kind] * per_confuser
    sources: list[SimSource] = []
    flux = np.full((len(kinds), t.size), np.nan)
    err = np.full((len(kinds), t.size), np.nan)
    red_flags = {kind: rng.permutation(kinds.count(kind)) % 3 == 0 for kind in CLASSES}
    seen = dict.fromkeys(CLASSES, 0)
    for i, kind in enumerate(kinds):
        src = SimSource(
            index=i,
            kind=kind,
            flux_jy=float(np.exp(rng.uniform(np.log(0.01), np.log(1.0)))),
            snr=float(np.exp(rng.uniform(np.log(5), np.log(200)))),
            ra_deg=FIELD_RA + rng.uniform(-0.8, 0.8) / math.cos(math.radians(FIELD_DEC)),
            dec_deg=FIELD_DEC + rng.uniform(-0.8, 0.8),
        )
        if red_flags[kind][seen[kind]]:
            src.red_rms = rng.uniform(0.01, 0.10)
            src.red_tau = float(np.exp(rng.uniform(np.log(30), np.log(300))))
        seen[kind] += 1
        if kind == "ese" and cut_rng.random() < cut_fraction:
            src.params["cut"] = 1.0 if cut_rng.random() < 0.5 else -1.0
        truth = src.flux_jy * _shape(rng, src, t, ese_shape)
        if src.red_rms:
            truth = truth * (1 + _drw(rng, t, src.red_rms, src.red_tau))
        sigma = src.flux_jy / src.snr
        observed = truth * gains * (1 + 0.01 * rng.standard_normal(t.size)) + sigma * rng.standard_normal(
            t.size
        )
        present = rng.random(t.size) >= 0.03
        flux[i, present] = observed[present]
        err[i, present] = sigma
        sources.append(src)
    return Simulation(image_mjd=t, sources=sources, flux=flux, err=err)


def normalised(sim: Simulation, n_refs: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Differential photometry in memory, as ingest does (``dsa110.science.lightcurve``).

    References: the ``n_refs`` highest-SNR sources with a median baseline; per image the
    median reference ratio with one 3 x MAD clip (``ensemble_correction``); F / C and the
    error propagated by ``normalise``. The baselines use the whole year (the live replay
    therefore sees corrections from data not yet taken: a small optimism, stated).
    """
    from dsa110.science.lightcurve import ensemble_correction, normalise

    order = np.argsort([-s.snr for s in sim.sources], kind="stable")[:n_refs]
    ref = sim.flux[order]
    base = np.nanmedian(ref, axis=1)
    factor = np.ones(sim.image_mjd.size)
    sigma = np.zeros(sim.image_mjd.size)
    for j in range(sim.image_mjd.size):
        c = ensemble_correction(ref[:, j] / base)
        if c.corrected:
            factor[j], sigma[j] = c.factor, c.sigma
    with np.errstate(invalid="ignore"):
        f, e = normalise(sim.flux, sim.err, factor[None, :], sigma[None, :])
    return f, e
