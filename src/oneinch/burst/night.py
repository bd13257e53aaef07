"""Night mode: a develop Recipe for merged many-frame low-light bursts that keeps night dark.

Phones often lift a night scene to daylight brightness; reviewers of the Leica-tuned phones ask
for the opposite (REFERENCES.md: "deep shadows kept dark, highlights not crushed"). The preset:

- exposure: no auto exposure (auto would push the log-average to middle grey = daylight);
  the file's BaselineExposure is kept and ``ev`` = −0.5 by default;
- tone: scene middle grey maps to display 0.10 (sRGB ≈ 89) instead of 0.18 (sRGB 118), a
  black point of 0.01 and contrast 1.1 so the sky stays near black; white at 5 stops over
  middle grey so lamps and signs roll off instead of clipping;
- denoise 'auto' (the merged NoiseProfile already says how much noise is left);
- sharpen 0.2 (merged frames are cleaner but halos on lamps look wrong); saturation 0.9
  (scotopic vision sees less colour at night).
"""

from __future__ import annotations

from ..recipe import Recipe

NIGHT = {
    "exposure": {"ev": -0.5, "auto": False, "baseline": True},
    "tone": {"curve": "filmic", "grey": 0.10, "black": 0.01, "contrast": 1.1, "white_ev": 5.0},
    "denoise": {"mode": "auto"},
    "sharpen": {"amount": 0.2},
    "look": {"saturation": 0.9},
}


def night_recipe(base: Recipe | None = None) -> Recipe:
    """The night preset applied on top of ``base`` (default Recipe())."""
    return (base or Recipe()).with_(**NIGHT)
