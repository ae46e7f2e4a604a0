"""Frame rendering: expression + blink fields applied with one cv2.remap on the face region, head motion
with one warpAffine, illumination gain through a lookup table, sensor noise, JPEG encoding."""

from __future__ import annotations

import math

import numpy as np

from tasks.synth.aus import FieldBasis, build_basis
from tasks.synth.identities import Identity
from tasks.synth.presets import SynthConfig
from tasks.synth.timeline import Expression, Timeline


class VideoRenderer:
    """Renders frame i of one video from its identity and timeline; frames are independent of each other."""

    def __init__(self, identity: Identity, timeline: Timeline, cfg: SynthConfig, rng: np.random.Generator):
        self.identity, self.timeline, self.cfg = identity, timeline, cfg
        self.base = identity.image
        self.basis: FieldBasis = build_basis(identity.landmarks, identity.face_width, self.base.shape[:2])
        x0, y0, x1, y1 = self.basis.roi
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self._gx, self._gy = gx, gy
        self.scale = identity.face_width / 128.0
        self.centre = tuple(float(v) for v in identity.landmarks[27:36].mean(axis=0))
        self.eye_opening = float(np.abs(self.basis.fields["AU45"]).max())
        bank = max(1, cfg.camera.noise_bank)
        self._noise = [np.clip(rng.normal(0.0, cfg.camera.noise_sigma, self.base.shape), -127, 127).astype(np.int16)
                       for _ in range(bank)]
        self._noise_pick = rng.integers(0, bank, size=timeline.n_frames)
        self._expr_cache: tuple[Expression | None, np.ndarray | None] = (None, None)

    def expression_unit_field(self, expr: Expression) -> np.ndarray:
        """Forward field of an expression at its apex, peak displacement = amplitude x scale pixels."""
        if self._expr_cache[0] is expr:
            return self._expr_cache[1]  # type: ignore[return-value]
        keys = [self.basis.key(au, expr.side if expr.side and au in ("AU12", "AU14") else None)
                for au in expr.aus]
        f = self.basis.combine(dict(zip(keys, expr.weights))) * np.float32(expr.amplitude)
        self._expr_cache = (expr, f)
        return f

    def field(self, frame: int) -> np.ndarray | None:
        """Forward displacement over the face region at `frame` (expression + blink), or None when neutral."""
        total = None
        expr = self.timeline.active_expression(frame)
        if expr is not None:
            w = expr.weight(frame)
            if w > 0:
                total = self.expression_unit_field(expr) * np.float32(w)
        b = self.timeline.blink_weight(frame)
        if b > 0:
            fb = self.basis.fields["AU45"] * np.float32(b)
            total = fb if total is None else total + fb
        return total

    def head_matrix(self, frame: int) -> np.ndarray:
        """2x3 affine of the head pose at `frame` (rotation about the nose, then translation)."""
        dx, dy, deg = self.timeline.head(frame)
        a = math.radians(deg)
        c, s = math.cos(a), math.sin(a)
        cx, cy = self.centre
        tx, ty = dx * self.scale, dy * self.scale
        return np.array([[c, -s, cx - c * cx + s * cy + tx], [s, c, cy - s * cx - c * cy + ty]], np.float32)

    def frame(self, frame: int) -> np.ndarray:
        """The rendered frame `frame` (uint8, RGB or grey)."""
        import cv2

        img = self.base
        d = self.field(frame)
        if d is not None:
            x0, y0, x1, y1 = self.basis.roi
            # backward map: output pixel p shows source p - d(p), so content moves by +d
            roi = cv2.remap(self.base, self._gx - d[0], self._gy - d[1], cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
            img = self.base.copy()
            img[y0:y1, x0:x1] = roi
        h, w = img.shape[:2]
        img = cv2.warpAffine(img, self.head_matrix(frame), (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
        gain = float(self.timeline.light[frame])
        lut = np.clip(np.arange(256, dtype=np.float32) * gain, 0, 255).astype(np.uint8)
        img = cv2.LUT(img, lut)
        return cv2.add(img, self._noise[self._noise_pick[frame]], dtype=cv2.CV_8U)

    def encode(self, img: np.ndarray) -> bytes:
        """JPEG bytes of a rendered frame at the video's quality (RGB is stored as BGR)."""
        import cv2

        bgr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.timeline.jpeg_quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()
