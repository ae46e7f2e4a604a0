"""Frame-rate independence: preprocessing steps given in seconds resolve to the same durations at any fps."""

from __future__ import annotations

import pytest

from storage.errors import InputError
from tasks.preprocess_shard import PreprocessConfig
from tasks.shards import needed_frames, resolve_k


@pytest.mark.parametrize("fps, steps, k", [(30.0, (30, 2, 3), 3), (100.0, (100, 7, 10), 10),
                                           (200.0, (200, 13, 20), 20)])
def test_auto_steps_follow_the_frame_rate(fps: float, steps: tuple, k: int) -> None:
    c = PreprocessConfig()
    assert c.frame_steps(fps) == steps and resolve_k(c.k, fps) == k
    detect, smooth, landmark = steps
    assert detect / fps == pytest.approx(1.0) and landmark / fps == pytest.approx(0.1)
    assert smooth / fps == pytest.approx(1 / 15, abs=0.5 / fps)


def test_explicit_steps_win_and_bad_ones_are_named() -> None:
    assert PreprocessConfig(detect_every="12", smooth="0", landmark_every="1").frame_steps(200.0) == (12, 0, 1)
    with pytest.raises(InputError, match="detect_every must be auto or an integer >= 1, got '0'"):
        PreprocessConfig(detect_every="0").check()
    with pytest.raises(InputError, match="smooth must be auto or an integer >= 0, got 'x'"):
        PreprocessConfig(smooth="x").check()


def test_a_200fps_shard_decodes_the_same_span_in_seconds_as_30fps() -> None:
    spans = {}
    for fps in (30.0, 200.0):
        c = PreprocessConfig()
        n, k = int(20 * fps), resolve_k(c.k, fps)
        start, end = int(5 * fps), int(7 * fps)
        need = needed_frames(start, end, n, k, c.face_mode, *c.frame_steps(fps))
        spans[fps] = ((need[0]) / fps, (need[-1]) / fps)
    assert spans[30.0][0] == pytest.approx(spans[200.0][0], abs=0.05)
    assert spans[30.0][1] == pytest.approx(spans[200.0][1], abs=0.05)
