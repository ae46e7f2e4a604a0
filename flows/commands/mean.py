"""CLI: `megc models` (list), `megc models import mean-keras` and `megc export str` (heavy imports inside the
commands)."""

from __future__ import annotations

import json

import typer

from flows.app import app, export_app
from flows.common import print_table, reports_errors, workspace


models_app = typer.Typer(help="Registered models: `megc models` lists them; `megc models import` adds models "
                               "trained elsewhere.")
import_app = typer.Typer(no_args_is_help=True, help="Import models trained elsewhere into the registry.")
models_app.add_typer(import_app, name="import")
app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
@reports_errors
def models_cmd(ctx: typer.Context, fmt: str = typer.Option("table", "--format", help="table, csv or json")) -> None:
    """List registered models."""
    if ctx.invoked_subcommand is not None:
        return
    from models.registry import list_models

    rows = []
    for c in list_models(workspace()):
        td = c.get("training_data", {})
        v = c.get("validation", {})
        rows.append((c.get("name"), c.get("kind"), td.get("dataset"), c.get("split"), len(c.get("folds", [])),
                     c.get("k"), c.get("k_prime"), ",".join(c.get("classes", [])), v.get("val_spot_acc"),
                     c.get("created_at")))
    print_table(["name", "kind", "dataset", "split", "folds", "k", "k_prime", "classes", "val_spot_acc",
                 "created_at"], rows, fmt)


@import_app.command("mean-keras")
@reports_errors
def import_mean_keras_cmd(
    path: str = typer.Argument(..., help="the release's MEAN_Weights/<DATASET> folder, one of its spot_recog/, "
                                         "spot/, recog/ folders, or one s<N>.hdf5 file"),
    name: str | None = typer.Option(None, "--name", help="registry name (default mean-<dataset-kind>-official)"),
    dataset_kind: str | None = typer.Option(None, "--dataset-kind",
                                            help="casme_sq (CAS(ME)^2), samm_lv, casme2 (CASME II), smic (SMIC-HS), "
                                                 "smic_vis, smic_nir; default: from the release folder's name"),
    fold: str = typer.Option("all", "--fold", help="sN (one fold) or all"),
    final: str | None = typer.Option(None, "--final", help="fold stored as the final model (default: lowest sN)"),
    k_prime: int | None = typer.Option(None, "--k-prime", help="k' in frames at the release dataset's fps "
                                                               "(default: CAS(ME)^2 6, SAMM-LV 37, others ~0.19 s)"),
    subjects_from: str | None = typer.Option(None, "--subjects-from",
                                             help="dataset in the workspace: fold sN holds out its N-th subject "
                                                  "with a micro-expression (natural order), as the release did"),
    subject_map: list[str] | None = typer.Option(None, "--subject-map", help="sN=SUBJECT, comma-separated or "
                                                                              "repeated (overrides --subjects-from)"),
) -> None:
    """Register the MEAN release's Keras HDF5 weights (read with h5py) as a MEAN model, one fold per s<N>."""
    from models.mean_keras import import_mean_keras, parse_subject_map

    out = import_mean_keras(workspace(), path, name, dataset_kind, fold, final, k_prime, subjects_from,
                            parse_subject_map(subject_map or []))
    print(json.dumps(out, indent=2))


@export_app.command("str")
@reports_errors
def export_str_cmd(
    run: str = typer.Option(..., "--run", help="spot run id"),
    out: str | None = typer.Option(None, "--out", help="CSV path (default <home>/exports/RUN_str.csv)"),
    frame_numbering: str = typer.Option("megc", "--frame-numbering", help="megc (0-based) or dataset"),
) -> None:
    """Write the MEGC STR submission CSV (subject, video, onset, offset, emotion) of a run."""
    from flows.spot import export_str

    print(export_str(workspace(), run, out, frame_numbering))
