"""Camera and scanner models shared by the synthetic datasets: what happens between the scene and the file.

The synthetic datasets render a *scene* (a procedural retina, a vessel map)
through the ground-truth geometry, then pass each image through an
acquisition model drawn independently for the moving and the fixed image. The
acquisition acts in *image* coordinates (vignetting, illumination, blur, noise,
compression belong to the camera, not to the tissue), so it never changes the
ground truth; it is what makes the two images differ in appearance the way
real acquisitions do. Each function takes its random draws from the ``rng`` it
is given, so a dataset stays a function of the config seed.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage


def vignetting(shape: tuple[int, int], rng: np.random.Generator, strength: float, centre_jitter: float) -> np.ndarray:
    """Radial fall-off ``1 - a (r / r_max)^2`` of a fundus camera's optics, centre jittered by a fraction of the side.

    ``a`` is drawn in ``[0.75, 1] * strength``; ``r_max`` is the half-diagonal.
    """
    h, w = shape
    cy = (h - 1) / 2.0 + rng.uniform(-centre_jitter, centre_jitter) * h
    cx = (w - 1) / 2.0 + rng.uniform(-centre_jitter, centre_jitter) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / (0.25 * (h * h + w * w))
    return (1.0 - rng.uniform(0.75, 1.0) * strength * r2).clip(0.05, None)


def smooth_gain(shape: tuple[int, int], rng: np.random.Generator, strength: float, lattice: int = 3) -> np.ndarray:
    """Smooth multiplicative illumination map ``1 ± strength`` (cubic-interpolated random lattice)."""
    h, w = shape
    coarse = rng.uniform(-1, 1, size=(lattice, lattice))
    fine = ndimage.zoom(coarse, (h / lattice, w / lattice), order=3, mode="nearest")[:h, :w]
    return 1.0 + strength * fine


def shot_and_read_noise(image: np.ndarray, rng: np.random.Generator, photons: float, read_std: float) -> np.ndarray:
    """Poisson photon noise (``photons`` electrons at full scale) plus Gaussian read noise, in [0, 1] units."""
    out = np.asarray(image, np.float64)
    if photons > 0:
        out = rng.poisson(np.clip(out, 0, None) * photons) / photons
    if read_std > 0:
        out = out + rng.normal(0.0, read_std, size=out.shape)
    return out


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """8-bit quantisation and a JPEG encode/decode round trip (OpenCV's libjpeg) at ``quality`` (1-100)."""
    u8 = np.clip(np.rint(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)
    if quality >= 100:
        return u8.astype(np.float32) / 255.0
    ok, buf = cv2.imencode(".jpg", u8, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes a 2-D uint8 array
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0


def fundus_camera(scene: np.ndarray, rng: np.random.Generator, settings: dict[str, float]) -> np.ndarray:
    """One fundus photograph of ``scene`` (reflectance in [0, 1]): gain and exposure, vignetting, a smooth
    illumination field (strength drawn in [0.5, 1] x ``illumination``: every visit is lit differently), gamma, an
    additive veil of stray light (``haze``, optional), defocus blur, shot + read noise, JPEG. ``settings`` gives each
    effect's maximum strength (see :data:`pcreg.datasets.synthetic_fundus.CAMERA`)."""
    s = settings
    out = np.asarray(scene, np.float64) * s["gain"] * rng.uniform(1.0 - s["exposure"], 1.0 + s["exposure"])
    out = out * vignetting(out.shape, rng, s["vignetting"], s["vignetting_jitter"])
    out = out * smooth_gain(out.shape, rng, rng.uniform(0.5, 1.0) * s["illumination"])
    out = np.clip(out, 0, None) ** np.exp(rng.uniform(-s["gamma"], s["gamma"]))
    if s.get("haze", 0.0) > 0:  # stray light / flare: a smooth additive veil of random strength
        out = out + rng.uniform(0, s["haze"]) * smooth_gain(out.shape, rng, 1.0).clip(0, None)
    sigma = rng.uniform(0, s["blur_sigma"])
    if sigma > 0:
        out = ndimage.gaussian_filter(out, sigma)
    out = shot_and_read_noise(out, rng, s["photons"], s["read_noise"])
    quality = int(rng.integers(int(s["jpeg_quality_min"]), int(s["jpeg_quality_max"]) + 1))
    return jpeg(np.clip(out, 0.0, 1.0), quality)
