"""`oneinch profile CHART_RAW -o out.dcp [--illuminant D65] [--chart2 RAW --illuminant2 A]
[--corners x,y,...] [--hue-sat-map]`: fit a camera profile from ColorChecker 24 shots.

Parsing only: the work is in ``oneinch.profile`` (patches, fit) and ``oneinch.isp.dcp`` (file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..errors import InputError, OptionError

# a chart's fit this far off (average ΔE2000) found no ColorChecker 24 where it looked (real
# charts fit at ~0.5-3; a frame of something else at ~20-30)
CHART_MAX_DE = 10.0


def _corners(text: str | None) -> np.ndarray | None:
    if not text:
        return None
    try:
        v = [float(t) for t in text.replace(";", ",").split(",")]
    except ValueError as e:
        raise OptionError(f"--corners must be 8 numbers x,y of TL,TR,BR,BL, got {text!r}") from e
    if len(v) != 8:
        raise OptionError(f"--corners must be 8 numbers x,y of TL,TR,BR,BL, got {len(v)}")
    return np.asarray(v).reshape(4, 2)


def profile_command(
    chart_raw: Annotated[Path, typer.Argument(help="raw/DNG of a ColorChecker 24")],
    output: Annotated[Path, typer.Option("-o", "--output", help="the .dcp to write")],
    illuminant: Annotated[str, typer.Option("--illuminant", help="light of the shot")] = "D65",
    chart2: Annotated[
        Path | None, typer.Option("--chart2", help="a second chart under another light")
    ] = None,
    illuminant2: Annotated[str, typer.Option("--illuminant2", help="its light")] = "A",
    corners: Annotated[
        str | None, typer.Option("--corners", help="x,y of TL,TR,BR,BL (default: full frame)")
    ] = None,
    corners2: Annotated[str | None, typer.Option("--corners2", help="same, for --chart2")] = None,
    hue_sat_map: Annotated[
        bool, typer.Option("--hue-sat-map", help="also fit a HueSatMap")
    ] = False,
    name: Annotated[str | None, typer.Option("--name", help="ProfileName")] = None,
) -> None:
    """Fit ColorMatrix/ForwardMatrix (and optionally a HueSatMap) from a chart; write a DCP."""
    from ..isp.dcp import write_dcp
    from ..profile import build_dcp, chart_camera_rgb, fit_chart, illuminant_xy
    from ..raw.reader import open_raw

    shots = [(chart_raw, illuminant, _corners(corners))]
    if chart2 is not None:
        if np.allclose(illuminant_xy(illuminant), illuminant_xy(illuminant2), atol=1e-4):
            raise OptionError(f"--illuminant {illuminant} and --illuminant2 {illuminant2} are "
                              "one light: a dual-illuminant profile needs two (e.g. D65 and A)")
        shots.append((chart2, illuminant2, _corners(corners2)))
    fits = []
    model = None
    for path, ill, box in shots:
        raw = open_raw(path)
        model = model or raw.unique_camera_model or " ".join(
            s for s in (raw.shot.make, raw.shot.model) if s) or None
        fit = fit_chart(chart_camera_rgb(raw, box), ill, hue_sat_map=hue_sat_map)
        if not fit.delta_e.mean() <= CHART_MAX_DE:
            raise InputError(f"no ColorChecker 24 found (the fit is ΔE2000 "
                             f"{fit.delta_e.mean():.0f} on average): frame the chart, or give "
                             "its corners with --corners", path)
        print(f"{path.name} ({ill}): fit ΔE2000 avg {fit.delta_e.mean():.2f} "
              f"max {fit.delta_e.max():.2f}")
        fits.append(fit)
    write_dcp(output, build_dcp(fits, model, name or f"{model or 'camera'} oneinch"))
    print(f"wrote {output}")
