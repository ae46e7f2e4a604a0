"""Action units as smooth displacement fields anchored at the 68 dlib landmarks.

Every AU is a set of landmark anchors, each with a forward motion vector (the direction the skin
moves) and a Gaussian radius, both in units of a face 128 px wide. A field is the sum of the
anchors' Gaussians, normalised so its peak displacement is one reference pixel (`scale` frame
pixels). "left"/"right" are the subject's own sides; a subject faces the camera, so its left is the
image's right (dlib landmarks 42-47, 54), also for subjects derived from a mirrored photograph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# dlib 68-point indices (0-based)
R_BROW, L_BROW = (17, 18, 19, 20, 21), (22, 23, 24, 25, 26)
R_UPPER_LID, L_UPPER_LID = (37, 38), (43, 44)
R_LOWER_LID, L_LOWER_LID = (40, 41), (46, 47)
R_CORNER, L_CORNER = 48, 54

# AU -> list of (landmark, dx, dy, sigma) in image axes (y down), reference-face pixels.
_AU_ANCHORS: dict[str, list[tuple[int, float, float, float]]] = {
    "AU1": [(21, 0.0, -1.0, 6.0), (22, 0.0, -1.0, 6.0), (20, 0.0, -0.7, 6.0), (23, 0.0, -0.7, 6.0)],
    "AU2": [(17, 0.0, -1.0, 6.0), (26, 0.0, -1.0, 6.0), (18, 0.0, -0.8, 6.0), (25, 0.0, -0.8, 6.0)],
    "AU4": [(20, 0.5, 1.0, 6.0), (21, 0.6, 0.8, 5.0), (23, -0.5, 1.0, 6.0), (22, -0.6, 0.8, 5.0)],
    "AU5": [(37, 0.0, -1.0, 4.0), (38, 0.0, -1.0, 4.0), (43, 0.0, -1.0, 4.0), (44, 0.0, -1.0, 4.0)],
    "AU6": [(1, 0.3, -1.0, 8.0), (15, -0.3, -1.0, 8.0), (41, 0.0, -0.6, 5.0), (46, 0.0, -0.6, 5.0)],
    "AU7": [(40, 0.0, -1.0, 4.0), (41, 0.0, -1.0, 4.0), (46, 0.0, -1.0, 4.0), (47, 0.0, -1.0, 4.0)],
    "AU9": [(31, 0.0, -1.0, 5.0), (35, 0.0, -1.0, 5.0), (33, 0.0, -0.8, 5.0), (28, 0.0, 0.4, 4.0)],
    "AU10": [(50, 0.0, -1.0, 5.0), (51, 0.0, -1.0, 5.0), (52, 0.0, -1.0, 5.0)],
    "AU12": [(48, -0.75, -0.65, 6.0), (54, 0.75, -0.65, 6.0)],
    "AU14": [(48, -0.9, -0.3, 6.0), (54, 0.9, -0.3, 6.0)],
    "AU15": [(48, -0.2, 1.0, 5.0), (54, 0.2, 1.0, 5.0)],
    "AU17": [(57, 0.0, -1.0, 6.0), (8, 0.0, -0.8, 8.0), (7, 0.0, -0.6, 7.0), (9, 0.0, -0.6, 7.0)],
    "AU25": [(57, 0.0, 1.0, 5.0), (66, 0.0, 1.0, 5.0), (56, 0.0, 0.8, 5.0), (58, 0.0, 0.8, 5.0),
             (51, 0.0, -0.3, 5.0), (62, 0.0, -0.3, 5.0)],
    "AU26": [(8, 0.0, 1.0, 10.0), (57, 0.0, 0.8, 8.0), (7, 0.0, 0.8, 9.0), (9, 0.0, 0.8, 9.0)],
}
UNILATERAL = ("AU12", "AU14")
AU_NAMES = tuple(_AU_ANCHORS)

_RIGHT_SIDE = set(range(0, 8)) | set(R_BROW) | set(range(36, 42)) | {31, 32, 48, 49, 50, 58, 59, 60, 61, 67}
_LEFT_SIDE = set(range(9, 17)) | set(L_BROW) | set(range(42, 48)) | {34, 35, 52, 53, 54, 55, 56, 63, 64, 65}


@dataclass
class FieldBasis:
    """AU displacement fields of one identity over a region of interest of the frame."""

    roi: tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels
    scale: float  # frame pixels per reference pixel (face width / 128)
    fields: dict[str, np.ndarray]  # key -> (2, h, w) float32 forward displacement, peak |d| = scale

    def key(self, au: str, side: str | None = None) -> str:
        """Field key of an AU, optionally restricted to one side ("AU12" + "left" -> "AU12:left")."""
        return f"{au}:{side}" if side else au

    def combine(self, weights: dict[str, float]) -> np.ndarray:
        """Weighted sum of fields, renormalised to a peak displacement of `scale` pixels."""
        total = np.zeros_like(next(iter(self.fields.values())))
        for k, w in weights.items():
            total += np.float32(w) * self.fields[k]
        peak = float(np.sqrt((total ** 2).sum(axis=0)).max())
        return total * np.float32(self.scale / peak) if peak > 0 else total


def _gauss_field(anchors: list[tuple[float, float, float, float, float]], roi: tuple[int, int, int, int],
                 ) -> np.ndarray:
    x0, y0, x1, y1 = roi
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    out = np.zeros((2, y1 - y0, x1 - x0), np.float32)
    for px, py, dx, dy, sigma in anchors:
        r = max(3.0 * sigma, 1.0)
        # only evaluate the Gaussian in its 3-sigma box
        xa, xb = int(max(x0, px - r)), int(min(x1, px + r + 1))
        ya, yb = int(max(y0, py - r)), int(min(y1, py + r + 1))
        if xa >= xb or ya >= yb:
            continue
        sx, sy = slice(xa - x0, xb - x0), slice(ya - y0, yb - y0)
        g = np.exp(-((xx[sy, sx] - px) ** 2 + (yy[sy, sx] - py) ** 2) / (2.0 * sigma * sigma))
        out[0, sy, sx] += dx * g
        out[1, sy, sx] += dy * g
    return out


def _normalised(field: np.ndarray, scale: float) -> np.ndarray:
    peak = float(np.sqrt((field ** 2).sum(axis=0)).max())
    return field * np.float32(scale / peak) if peak > 0 else field


def face_roi(landmarks: np.ndarray, face_width: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Region holding every AU field: the landmarks' box plus a margin, clipped to the frame."""
    m = 0.3 * face_width
    x0, y0 = np.floor(landmarks.min(axis=0) - m).astype(int)
    x1, y1 = np.ceil(landmarks.max(axis=0) + m).astype(int)
    h, w = shape
    return max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))


def build_basis(landmarks: np.ndarray, face_width: float, shape: tuple[int, int]) -> FieldBasis:
    """Precompute every AU field (bilateral, plus left/right for unilateral AUs) and the blink field."""
    scale = face_width / 128.0
    roi = face_roi(landmarks, face_width, shape)
    fields: dict[str, np.ndarray] = {}
    for au, anchors in _AU_ANCHORS.items():
        full = [(float(landmarks[i, 0]), float(landmarks[i, 1]), dx * scale, dy * scale, s * scale)
                for i, dx, dy, s in anchors]
        fields[au] = _normalised(_gauss_field(full, roi), scale)
        if au in UNILATERAL:
            for side in ("left", "right"):
                keep = _LEFT_SIDE if side == "left" else _RIGHT_SIDE
                part = [a for a, (i, *_rest) in zip(full, anchors) if i in keep]
                fields[f"{au}:{side}"] = _normalised(_gauss_field(part, roi), scale)
    fields["AU45"] = blink_field(landmarks, roi)
    return FieldBasis(roi, scale, fields)


def eye_opening(landmarks: np.ndarray) -> float:
    """Mean vertical distance between upper and lower eyelid landmarks, pixels."""
    up = landmarks[[37, 38, 43, 44], 1]
    low = landmarks[[41, 40, 47, 46], 1]
    return float(np.mean(low - up))


def _ramp(t: np.ndarray) -> np.ndarray:
    """Raised-cosine ramp: 0 for t <= 0, 1 for t >= 1."""
    t = np.clip(t, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * t)


def blink_field(landmarks: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    """Upper-lid closure field; peak displacement = the eye opening (full closure at weight 1).

    The lid skin between the crease (one opening above the upper lid) and the lid margin is
    stretched down over the eye: the displacement grows linearly from the crease to the lower lid
    (slope below 1, so no fold-over), then fades within a third of an opening below it. Horizontally
    it is flat between the eye corners with smooth shoulders.
    """
    x0, y0, x1, y1 = roi
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    out = np.zeros((2, y1 - y0, x1 - x0), np.float32)
    opening = max(eye_opening(landmarks), 1.0)
    for corners, upper, lower in (((36, 39), (37, 38), (40, 41)), ((42, 45), (43, 44), (46, 47))):
        xa, xb = sorted(float(landmarks[c, 0]) for c in corners)
        w = xb - xa
        crease = float(landmarks[list(upper), 1].mean()) - 1.0 * opening
        y_low = float(landmarks[list(lower), 1].mean())
        hx = _ramp((xx - (xa - 0.15 * w)) / (0.3 * w)) * _ramp(((xb + 0.15 * w) - xx) / (0.3 * w))
        rise = np.clip((yy - crease) / (y_low - crease), 0.0, 1.0)
        fall = _ramp(((y_low + 0.35 * opening) - yy) / (0.35 * opening))
        out[1] += opening * hx * rise * fall
    return out


def peak_displacement(field: np.ndarray) -> float:
    """Largest displacement magnitude of a (2, h, w) field, pixels."""
    return float(np.sqrt((field ** 2).sum(axis=0)).max())
