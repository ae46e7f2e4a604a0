"""Subjects derived from face photographs that ship inside installed packages, with dlib landmarks.

Two photographs are available offline: scikit-image's `astronaut` and matplotlib's `grace_hopper`.
Each subject is one of them under its own similarity transform, mirroring, colour/brightness/contrast
and a smooth random face-shape warp, so at least eight subjects look clearly different.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storage.errors import MegcError
from tasks.face import dlib_models
from tasks.synth.presets import SynthConfig

PHOTOS = ("astronaut", "grace_hopper")


@dataclass
class Identity:
    """A subject's neutral frame (RGB, or grey when the preset is grey) and its 68 dlib landmarks."""

    index: int
    photo: str
    image: np.ndarray  # (H, W, 3) RGB uint8 or (H, W) uint8
    landmarks: np.ndarray  # (68, 2) float32, frame pixels
    face_box: tuple[int, int, int, int]  # dlib box x, y, w, h

    @property
    def face_width(self) -> float:
        """Width of the dlib face box in pixels."""
        return float(self.face_box[2])


@functools.cache
def photo(name: str) -> np.ndarray:
    """An RGB face photograph from an installed package."""
    import cv2

    if name == "astronaut":
        import skimage.data

        return np.ascontiguousarray(skimage.data.astronaut())
    if name == "grace_hopper":
        import matplotlib

        p = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise MegcError(f"cannot read the face photograph {p}")
        return np.ascontiguousarray(img[:, :, ::-1])
    raise MegcError(f"unknown face photograph {name!r}; known: {PHOTOS}")


def detect(grey: np.ndarray, near: tuple[float, float] | None = None, upsample: int = 0,
           ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """dlib HOG face box (x, y, w, h) and 68 landmarks (68x2) of the face nearest `near`, or None."""
    detector, predictor = dlib_models()
    rects = list(detector(grey, upsample))
    if not rects:
        return None
    if near is not None:
        rects.sort(key=lambda r: (r.center().x - near[0]) ** 2 + (r.center().y - near[1]) ** 2)
    else:
        rects.sort(key=lambda r: -r.width())
    r = rects[0]
    shape = predictor(grey, r)
    pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float32)
    return (r.left(), r.top(), r.width(), r.height()), pts


@functools.cache
def _photo_face(name: str) -> tuple[tuple[int, int, int, int], np.ndarray]:
    import cv2

    found = detect(cv2.cvtColor(photo(name), cv2.COLOR_RGB2GRAY), upsample=1)
    if found is None:
        raise MegcError(f"dlib finds no face in the photograph {name!r}")
    return found


def _smooth_warp(rng: np.random.Generator, shape: tuple[int, int], centre: tuple[float, float],
                 radius: float, amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random displacement field (coarse 5x5 grid, cubic upsampling) fading out beyond the face."""
    import cv2

    h, w = shape
    coarse = rng.normal(0.0, amplitude / 2.0, size=(2, 5, 5)).astype(np.float32)
    dx = cv2.resize(coarse[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(coarse[1], (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fade = np.exp(-(((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * radius ** 2))).astype(np.float32)
    return dx * fade, dy * fade


def _render_identity(index: int, cfg: SynthConfig, rng: np.random.Generator) -> tuple[str, np.ndarray, tuple]:
    import cv2

    ic = cfg.identity
    name = PHOTOS[index % len(PHOTOS)]
    src = photo(name)
    (bx, by, bw, bh), _ = _photo_face(name)
    mirror = (index // len(PHOTOS)) % 2 == 1
    face_w = cfg.face_width * (1.0 + rng.uniform(-ic.face_scale_jitter, ic.face_scale_jitter))
    s = face_w / bw
    angle = rng.uniform(-ic.rotation_deg, ic.rotation_deg)
    cx = cfg.width / 2 + rng.uniform(-ic.position_jitter, ic.position_jitter) * cfg.width
    cy = cfg.height * 0.47 + rng.uniform(-ic.position_jitter, ic.position_jitter) * cfg.height
    src_c = (bx + bw / 2.0, by + bh / 2.0)
    m = cv2.getRotationMatrix2D(src_c, angle, s)
    m[:, 2] += np.array([cx - src_c[0], cy - src_c[1]])
    if mirror:  # mirror about the frame's vertical line through cx
        m = np.array([[-1, 0, 2 * cx], [0, 1, 0]], np.float64) @ np.vstack([m, [0, 0, 1]])
    img = cv2.warpAffine(src, m, (cfg.width, cfg.height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    # smooth face-shape warp, centred on the face
    dx, dy = _smooth_warp(rng, img.shape[:2], (cx, cy), 0.8 * face_w, ic.shape_warp * face_w)
    yy, xx = np.mgrid[0:cfg.height, 0:cfg.width].astype(np.float32)
    img = cv2.remap(img, xx + dx, yy + dy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    # colour, contrast and brightness
    f = img.astype(np.float32)
    f *= (1.0 + rng.uniform(-ic.colour_gain, ic.colour_gain, size=3)).astype(np.float32)
    mean = f.mean()
    f = (f - mean) * (1.0 + rng.uniform(-ic.contrast, ic.contrast)) + mean + rng.uniform(-ic.brightness, ic.brightness)
    img = np.clip(f, 0, 255).astype(np.uint8)
    if cfg.grey:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return name, img, (cx, cy)


_CACHE: dict[tuple, Identity] = {}


def make_identity(index: int, cfg: SynthConfig, seed: int) -> Identity:
    """Subject `index` for this seed: its neutral frame and dlib landmarks (deterministic, cached)."""
    import cv2

    key = (index, seed, cfg.width, cfg.height, cfg.face_width, cfg.grey, repr(cfg.identity))
    if key in _CACHE:
        return _CACHE[key]
    for attempt in range(12):
        rng = np.random.default_rng([seed, 7, index, attempt])
        name, img, centre = _render_identity(index, cfg, rng)
        grey = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        found = detect(grey, near=centre, upsample=1 if cfg.face_width < 100 else 0)
        if found is None:
            continue
        box, pts = found
        if abs(box[0] + box[2] / 2 - centre[0]) > box[2] / 2 or box[2] < 0.6 * cfg.face_width:
            continue
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[key] = Identity(index, name, img, pts, box)
        return _CACHE[key]
    raise MegcError(f"dlib finds no face on synthetic subject {index} after 12 attempts; "
                    "try another seed or a larger face_width")
