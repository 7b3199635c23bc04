"""A procedural retina (the *scene* of ``synthetic-fundus``): vessel tree, optic disc, macula, background.

What it follows. The layout and the appearance model follow the procedural
synthetic-fundus generator of Fiorini et al. (2014, "Automatic generation of
synthetic retinal fundus images", Eurographics Italian Chapter; extended as
Bonaldi et al. 2016): a background with a choroidal texture, an optic disc with
its cup, a darker macula/fovea about 2.5 disc diameters temporal to the disc,
and a vessel tree of arteries and veins that leaves the disc in four arcades
(superior/inferior, temporal/nasal), the temporal ones curving around the
macula, which stays avascular. Their vessel model is learned from data; here it
is replaced by a simple growth model in the spirit of the constructive vessel
tree generators (Schneider et al. 2012; the space-colonisation trees of Liu et
al. 2022 and Menti et al. 2016 also grow from the disc): each vessel is a
tortuous path (a random walk of its heading, smoothed) that gives off
daughter branches; at a bifurcation the calibres follow Murray's law
(``r_parent^3 = r_1^3 + r_2^3``, Murray 1926) and the branching angles follow
the minimum-work optimum for those calibres (Zamir 1976: the thinner daughter
leaves at the larger angle). A vessel ends when it becomes thinner than the
finest calibre, enters the foveal avascular zone or leaves the map. It is a
model for registration benchmarks (structure at many scales that moves with the
tissue), not a clinically faithful retina.

Units. A scene is rendered on a square map in *scene pixels*; ``ppx`` scene
pixels make one pixel of the working image (the scene is rendered finer than
the images, so fine vessels are sub-pixel in the images, as in FIRE-Reg-256,
whose patches are cut from 2912-px photographs). Sizes are given in working
pixels of a 128-px image (a 45-degree field of view about 200 px across), so a
disc radius of 14 px, arcade vessels 1.8 px wide and the finest vessels
0.4 px wide. All draws come from the ``rng`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

#: Anatomy in working pixels (of a 128-px image) and reflectances in [0, 1] (green channel).
ANATOMY: dict[str, float] = {
    "disc_radius": 13.0,          # optic disc (about 1.8 mm of a 12-mm field)
    "fovea_distance": 2.5,        # disc-fovea distance in disc diameters
    "fovea_radius": 16.0,         # macular darkening (Gaussian sigma)
    "fovea_depth": 0.35,          # ... its relative darkening
    "avascular_radius": 6.0,      # foveal avascular zone
    "trunk_radius": 1.0,          # calibre (radius) of the arcade trunks at the disc
    "min_radius": 0.3,            # finest calibre drawn
    "vein_ratio": 1.25,           # vein / artery calibre
    "artery_contrast": 0.30,      # relative darkening of a wide artery
    "vein_contrast": 0.45,        # ... of a wide vein
    "background": 0.42,           # mean fundus reflectance (green)
    "texture": 0.17,              # std of the choroidal texture (relative)
    "texture_scale": 1.2,         # its correlation length (working px)
    "pigment": 0.42,              # low-frequency pigmentation variation (relative std)
    "pigment_lattice": 3,         # ... its lattice nodes across the scene map
    "step": 0.8,                  # path step (working px)
}


@dataclass
class Vessel:
    """A vessel path in scene pixels: ``points`` (n, 2) as (x, y), ``radius`` (n,), ``kind`` artery/vein."""

    points: np.ndarray
    radius: np.ndarray
    kind: str


@dataclass
class Eye:
    """One eye's layout in scene pixels (map of side ``size``; ``ppx`` scene px per working px)."""

    size: int
    ppx: float
    disc: np.ndarray            # (x, y)
    fovea: np.ndarray           # (x, y)
    vessels: list[Vessel] = field(default_factory=list)
    background: np.ndarray | None = None  # (size, size) reflectance without vessels and disc


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise with unit std (correlation length ``sigma`` pixels)."""
    noise = rng.standard_normal(shape).astype(np.float32)
    out = cv2.GaussianBlur(noise, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return out / max(float(out.std()), 1e-6)


def _lowfreq(rng: np.random.Generator, size: int, lattice: int = 4) -> np.ndarray:
    """Smooth field in [-1, 1] (bicubic zoom of a random lattice)."""
    coarse = rng.uniform(-1, 1, size=(lattice, lattice)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC).clip(-1.5, 1.5)


def grow_tree(eye: Eye, rng: np.random.Generator, anatomy: dict[str, float] = ANATOMY,
              max_vessels: int = 250) -> list[Vessel]:
    """Vessel tree from the disc: 4 arcades x (artery, vein), branching by Murray's law (module docstring)."""
    a, k = anatomy, eye.ppx
    step = a["step"] * k
    disc, fovea = eye.disc, eye.fovea
    towards_fovea = np.arctan2(*(fovea - disc)[::-1])
    r_min = a["min_radius"] * k
    avascular = a["avascular_radius"] * k
    lo, hi = -0.15 * eye.size, 1.15 * eye.size
    # queue of (start (x, y), heading, radius, kind, generation, arcade bend per step)
    queue: list[tuple[np.ndarray, float, float, str, int, float]] = []
    for side in (-1.0, 1.0):          # superior / inferior
        for temporal in (True, False):
            base = towards_fovea + side * (rng.uniform(0.55, 0.8) if temporal else rng.uniform(1.9, 2.4))
            bend = -side * (rng.uniform(0.0030, 0.0045) if temporal else rng.uniform(0.0, 0.0015)) / k
            for kind in ("artery", "vein"):
                h0 = base + rng.normal(0, 0.12)
                r0 = a["trunk_radius"] * k * rng.uniform(0.85, 1.1) * (a["vein_ratio"] if kind == "vein" else 1.0)
                if not temporal:
                    r0 *= 0.8
                start = disc + 0.6 * a["disc_radius"] * k * np.array([np.cos(h0), np.sin(h0)])
                queue.append((start, h0, r0, kind, 0, bend))
    vessels: list[Vessel] = []
    while queue and len(vessels) < max_vessels:
        start, heading, radius, kind, gen, bend = queue.pop(0)
        # path length until the calibre has been handed on to branches: longer for thicker vessels
        n = int(rng.uniform(60, 140) * (radius / (a["trunk_radius"] * k)) ** 0.7 * k / step) + 8
        turn = rng.normal(0.0, 0.06, size=n)
        turn = np.convolve(turn, np.ones(5) / 5, mode="same")  # tortuosity: smoothed random heading changes
        headings = heading + np.cumsum(turn + bend * step)
        pts = start + np.cumsum(step * np.stack([np.cos(headings), np.sin(headings)], 1), axis=0)
        inside = (pts >= lo).all(1) & (pts <= hi).all(1) & (np.hypot(*(pts - fovea).T) > avascular)
        stop = int(np.argmin(inside)) if not inside.all() else n
        if stop < 3:
            continue
        pts, headings = pts[:stop], headings[:stop]
        radii = np.full(stop, radius)
        # side branches every few calibres; the parent keeps (r^3 - r_d^3)^(1/3) (Murray)
        pos = int(rng.uniform(8, 25) * k / step)
        r = radius
        while pos < stop - 2 and r > r_min:
            rd = r * rng.uniform(0.45, 0.85)
            rp = (r**3 - rd**3) ** (1 / 3)
            if rd >= r_min:
                # minimum-work branching angles (Zamir): cos(theta_d) = (r^4 + rd^4 - rp^4) / (2 r^2 rd^2)
                cos_d = np.clip((r**4 + rd**4 - rp**4) / (2 * r**2 * rd**2), -1, 1)
                cos_p = np.clip((r**4 + rp**4 - rd**4) / (2 * r**2 * rp**2), -1, 1)
                side = rng.choice([-1.0, 1.0])
                queue.append((pts[pos].copy(), headings[pos] + side * np.arccos(cos_d), rd, kind, gen + 1,
                              0.0))
                headings[pos:] -= side * np.arccos(cos_p) * 0.5
                # re-integrate the parent's path after the kink (the parent deviates by its smaller angle)
                pts[pos + 1:] = pts[pos] + np.cumsum(step * np.stack([np.cos(headings[pos + 1:]),
                                                                      np.sin(headings[pos + 1:])], 1), axis=0)
            r = rp
            radii[pos:] = r
            pos += int(rng.uniform(8, 25) * k / step * max(r / (a["trunk_radius"] * k), 0.35))
        vessels.append(Vessel(pts, radii, kind))
        end_r = radii[-1] * 0.85
        if end_r * 0.8 >= r_min and gen < 12:  # the vessel continues as two daughters (a terminal bifurcation)
            r1 = end_r * rng.uniform(0.75, 0.9)
            r2 = max(end_r**3 - r1**3, 0) ** (1 / 3)
            for rd, sgn in ((r1, 1.0), (r2, -1.0)):
                if rd >= r_min:
                    queue.append((pts[-1].copy(), headings[-1] + sgn * rng.uniform(0.3, 0.7), rd, kind, gen + 1,
                                  bend * 0.5))
    return vessels


def make_eye(rng: np.random.Generator, size: int, ppx: float, anatomy: dict[str, float] = ANATOMY) -> Eye:
    """Draw one eye: disc and fovea positions on a map of ``size`` scene px, its background and its vessel tree."""
    a = anatomy
    # The disc lies somewhere around the map (inside it or up to a disc radius beyond its edge); the fovea
    # 2.5 disc diameters away in a random direction, so each eye shows a different part of the posterior pole.
    disc = rng.uniform(0.1, 0.9, size=2) * size
    angle = rng.uniform(-np.pi, np.pi)
    dist = a["fovea_distance"] * 2 * a["disc_radius"] * ppx
    fovea = disc + dist * np.array([np.cos(angle), np.sin(angle)])
    eye = Eye(size=size, ppx=ppx, disc=disc, fovea=fovea)
    eye.vessels = grow_tree(eye, rng, a)
    # textures are drawn on a coarser grid (one node per image pixel) and interpolated to the scene map
    n = max(int(round(size / ppx)), 8)
    texture = cv2.resize(_smooth_noise(rng, (n, n), a["texture_scale"]), (size, size), interpolation=cv2.INTER_LINEAR)
    coarse = cv2.resize(_smooth_noise(rng, (n, n), 4.0 * a["texture_scale"]), (size, size),
                        interpolation=cv2.INTER_LINEAR)
    # low-frequency pigmentation, scaled to a fixed std over the central half of the map (where the images
    # are), so that every eye has the same share of low-frequency structure
    pigment = _lowfreq(rng, size, int(a["pigment_lattice"]))
    centre = pigment[size // 4:3 * size // 4, size // 4:3 * size // 4]
    pigment = np.clip((pigment - centre.mean()) / max(float(centre.std()), 1e-6), -2.5, 2.5)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    macula = np.exp(-((xx - fovea[0]) ** 2 + (yy - fovea[1]) ** 2) / (2 * (a["fovea_radius"] * ppx) ** 2))
    bg = a["background"] * (1 + a["pigment"] * pigment) * (1 - a["fovea_depth"] * macula)
    eye.background = (bg * (1 + a["texture"] * (0.6 * texture + 0.8 * coarse))).astype(np.float32)
    return eye


def vessel_absorption(eye: Eye, calibre: float = 1.0, anatomy: dict[str, float] = ANATOMY) -> np.ndarray:
    """Relative darkening by the vessels in [0, 1) on the scene map; ``calibre`` scales every radius."""
    a = anatomy
    out = {"artery": np.zeros((eye.size, eye.size), np.float32), "vein": np.zeros((eye.size, eye.size), np.float32)}
    shift = 3  # cv2 fixed-point sub-pixel positions
    scale = float(1 << shift)
    wide = a["trunk_radius"] * eye.ppx
    for v in eye.vessels:
        contrast = a["vein_contrast"] if v.kind == "vein" else a["artery_contrast"]
        # draw runs of constant width (the calibre changes at branch points); a vessel thinner than a scene
        # pixel is drawn 1 px wide at a proportionally lower opacity (partial volume)
        radius = v.radius * calibre
        width = np.maximum(2 * radius, 0.5)
        cuts = [0, *(np.flatnonzero(np.diff(width)) + 1).tolist(), len(width)]
        pts_all = np.round(v.points * scale).astype(np.int32)
        for i0, i1 in zip(cuts[:-1], cuts[1:]):
            w = float(width[i0])
            thick = max(int(round(w)), 1)
            c = contrast * min(1.0, (radius[i0] / wide) ** 0.3) * min(1.0, w / thick)
            pts = pts_all[i0:min(i1 + 1, len(width))].reshape(-1, 1, 2)
            cv2.polylines(out[v.kind], [pts], False, float(c), thickness=thick, lineType=cv2.LINE_AA, shift=shift)
    art = cv2.GaussianBlur(out["artery"], (0, 0), 0.35 * eye.ppx)
    vein = cv2.GaussianBlur(out["vein"], (0, 0), 0.35 * eye.ppx)
    return 1.0 - (1.0 - art) * (1.0 - vein)


def render_scene(eye: Eye, calibre: float = 1.0, anatomy: dict[str, float] = ANATOMY) -> np.ndarray:
    """Reflectance map of the eye (scene pixels): background, vessels, optic disc with its cup; float32 in [0, 1]."""
    a = anatomy
    scene = eye.background * (1 - vessel_absorption(eye, calibre, a))
    # the optic disc and its cup, computed in the disc's bounding box only
    r = 1.6 * a["disc_radius"] * eye.ppx
    x0, y0 = (max(int(c - r), 0) for c in eye.disc)
    x1, y1 = (min(int(c + r) + 1, eye.size) for c in eye.disc)
    if x1 > x0 and y1 > y0:
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        rd = np.hypot(xx - eye.disc[0], yy - eye.disc[1]) / (a["disc_radius"] * eye.ppx)
        disc = 1.0 / (1.0 + np.exp(np.clip((rd - 1.0) / 0.08, -50, 50)))
        cup = np.exp(-(rd / 0.45) ** 2)
        box = scene[y0:y1, x0:x1]
        # vessels stay visible on the disc at half their contrast
        ves = 1 - box / np.maximum(eye.background[y0:y1, x0:x1], 1e-6)
        box = eye.background[y0:y1, x0:x1] * (1 - ves * (1 - 0.5 * disc))
        scene[y0:y1, x0:x1] = box * (1 + 0.9 * disc) + 0.25 * cup
    return np.clip(scene, 0.0, 1.0).astype(np.float32)
