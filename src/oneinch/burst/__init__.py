"""Burst photography: HDR+-style align and merge, exposure brackets, Mertens fusion, night.

``merge_raws(raws)`` aligns (align.py) and merges (merge.py) a constant-exposure Bayer burst
into one RawImage; ``merge_bracket(raws)`` merges an exposure bracket into a linear HDR raw and
``mertens(images)`` fuses display images (fuse.py); ``night_recipe()`` develops night bursts.
``merge_files(paths, out)`` is the file-level entry the command uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .fuse import merge_bracket, mertens
from .merge import MergeInfo, check_frames, merge_raws
from .night import night_recipe

__all__ = ["MergeInfo", "check_frames", "merge_bracket", "merge_files", "merge_raws", "mertens",
           "night_recipe"]


def merge_files(
    paths: Sequence[str | Path],
    output: str | Path,
    reference: int | str = "auto",
    progress: Callable[[float], None] | None = None,
) -> MergeInfo:
    """Open the frames, merge them (a bracket when exposure times differ) and write a DNG."""
    from ..raw import open_raw
    from ..raw.dng import write_dng

    raws = [open_raw(p) for p in paths]
    check_frames(raws)
    times = {r.shot.exposure_time for r in raws}
    if len(times) > 1 and None not in times:
        merged, info = merge_bracket(raws)
        result = MergeInfo(reference=int(info["reference"]), frames=len(raws),
                           noise_ratio=info["noise_ratio"], mean_rejection=0.0)
    else:
        merged, result = merge_raws(raws, reference, progress=progress)
    write_dng(output, merged)
    return result
