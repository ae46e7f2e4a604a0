"""CLI: `megc preprocess DATASET` (face alignment, optical flow and features on Dask under Prefect)."""

from __future__ import annotations

import json
import sys

import typer

from flows.app import app
from flows.common import reports_errors, with_config, workspace


@app.command("preprocess")
@reports_errors
@with_config("tasks.preprocess_shard:PreprocessConfig")
def preprocess_cmd(
    dataset: str = typer.Argument(..., help="dataset name in the workspace"),
    flow: str | None = typer.Option(None, "--flow", help="optical flow: dis (default), farneback, tvl1"),
    k: str | None = typer.Option(None, "--k", help="flow step: auto = round(0.1 s x fps), or N frames"),
    face_mode: str | None = typer.Option(None, "--face-mode", help="track (default) or mean (MEAN's)"),
    workers: int | None = typer.Option(None, "--workers", help="LocalCluster worker processes (2)"),
    dask_address: str | None = typer.Option(None, "--dask-address", help="tcp://HOST:PORT of a scheduler"),
    shard_size: int | None = typer.Option(None, "--shard-size", help="frames per shard (256)"),
    force: bool = typer.Option(False, "--force", help="recompute finished shards"),
    keep_going: bool = typer.Option(False, "--keep-going",
                                    help="exit 0 when some videos failed (they are listed in qc); else exit 3"),
    cfg=None,
) -> None:
    """Align faces, compute optical flow and write features, roi_series, landmarks and qc (resumable)."""
    from flows.preprocess import failure_message, preprocess

    summary = preprocess(dataset, workspace().home, cfg)
    print(json.dumps(summary, indent=2))
    if summary["failed"]:
        print(f"megc: partial: {failure_message(summary)}; failed videos are in qc (stage 'preprocess')",
              file=sys.stderr)
        if not keep_going:
            raise typer.Exit(3)
