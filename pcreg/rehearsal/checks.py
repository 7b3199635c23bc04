"""What the rehearsal must leave behind, checked after the workflow ran on config/paper.yaml.

- every table and figure of every dataset (:func:`pcreg.reporting.outputs` names), and the paper tables with
  their rows: Table 1 on FIRE-Reg-256 with the paper's values beside ours, the ablation table, Table 3 with
  TNCC/TNCG for both OR-PAM sets (finite on the temporal one), the whole-FIRE geometry table with AUC per
  S/P/A and failed/inaccurate/acceptable shares;
- the known geometry of the FIRE stand-in recovered at the original resolution: each method's stored field
  (``fields.npy``) maps the fixed control points of each pair into the moving image, and the mean distance to
  ``H(x1)`` (the homography the pair was made with, ``truth.json``), in original pixels, is below the tolerance
  (:data:`GEOMETRY_TOLERANCE_PX`). This does not reuse the suite's scoring code: it reads the field and the
  prepared dataset's ``original_scale`` and nothing else;
- every prepare/fit/register/evaluate job stayed within the memory its step declares (``resources`` of the
  config), from Snakemake's benchmark files (``max_rss``).

:func:`check_run` returns the list of problems (empty: the rehearsal passed) and the geometry rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from pcreg.datasets.format import PreparedDataset
from pcreg.rehearsal.standins import apply_homography
from pcreg.reporting.outputs import ALWAYS_TABLES, CURVES, FIGURES, LANDMARK_PLOTS, PLOTS, TABLES

#: Method run -> (categories, largest mean landmark error in original FIRE pixels). SIFT fits a homography,
#: the model the pairs were made with, so it must recover every category (1 working pixel of whole FIRE at
#: 768 px is 3.79 original pixels). The other methods' errors are printed, not required: SyN as configured
#: recovers the smallest S motion (~29 original px) and not a ~75 px one (docs/CLUSTER.md).
GEOMETRY_TOLERANCE_PX = {"sift": (("S", "P", "A"), 5.0)}

#: Rows each paper table must have (run ids), and the columns that must carry the paper's value.
TABLE1_RUNS = ("identity", "sift", "demons", "horn_schunck", "syn", "voxelmorph", "transmorph", "pcreg_net")
ABLATION_RUNS = ("pcreg_net", "pcreg_net_no_contrast", "pcreg_net_no_injection", "pcreg_net_single_stage",
                 "pcreg_net_no_aux", "pcreg_net_moving_fixed", "pcreg_net_full_20")
ORPAM_DATASETS = {"or-pam-reg-4k": False, "or-pam-reg-temporal-26k": True}  # name -> temporal (TNCC finite)
#: Benchmark folder -> the config's resources step whose mem_mb the job declared.
MEMORY_STEPS = {"prepare": "prepare", "fit": "fit", "register": "register", "evaluate": "evaluate"}


def expected_files(datasets: dict[str, dict]) -> list[str]:
    """Relative paths of every table and figure the paper protocol produces, by dataset name -> flags
    (``table3``, ``ablation``, ``landmarks``: False where the dataset has none, so no FIRE success curves)."""
    out = []
    for d, flags in datasets.items():
        kinds = list(ALWAYS_TABLES) + [k for k in ("table3", "ablation") if flags.get(k)]
        out += [f"results/tables/{TABLES[k].format(dataset=d)}.{ext}" for k in kinds for ext in ("csv", "md")]
        out.append(f"results/tables/{CURVES.format(dataset=d)}")
        plots = [k for k in PLOTS if k not in LANDMARK_PLOTS or flags.get("landmarks", True)]
        out += [f"results/figures/{FIGURES[k].format(dataset=d)}" for k in ("qualitative", *plots)]
    return out


def _table(run_dir: Path, kind: str, dataset: str) -> pd.DataFrame:
    return pd.read_csv(run_dir / "results" / "tables" / f"{TABLES[kind].format(dataset=dataset)}.csv")


def _rows_problems(df: pd.DataFrame, runs: tuple[str, ...], what: str) -> list[str]:
    have = set(df["run"].dropna()) if "run" in df else set()
    missing = [r for r in runs if r not in have]
    return [f"{what}: no row for {', '.join(missing)}"] if missing else []


def table_problems(run_dir: Path) -> list[str]:
    """Problems with the paper tables' rows and columns."""
    problems = []
    t1 = _table(run_dir, "table1", "fire-reg-256")
    problems += _rows_problems(t1, TABLE1_RUNS, "table1_fire-reg-256")
    for m in ("ncc", "ssim", "psnr"):
        for col in (f"{m}_mean", f"{m}_paper"):
            if col not in t1:
                problems.append(f"table1_fire-reg-256: no column {col}")
    if not problems:
        ours = t1[t1["run"].isin(TABLE1_RUNS)]
        if ours["ncc_mean"].isna().any():
            problems.append("table1_fire-reg-256: a run has no NCC of its own")
        if ours["ncc_paper"].isna().any():
            problems.append("table1_fire-reg-256: a run the paper reports has no paper value beside ours")
    ab = _table(run_dir, "ablation", "fire-reg-256")
    problems += _rows_problems(ab, ABLATION_RUNS, "ablation_fire-reg-256")
    if "ncc_paper" not in ab or ab.loc[ab["run"] == "pcreg_net_no_contrast", "ncc_paper"].isna().all():
        problems.append("ablation_fire-reg-256: no paper value beside 'w/o contrast module'")
    for d, temporal in ORPAM_DATASETS.items():
        t3 = _table(run_dir, "table3", d)
        problems += _rows_problems(t3, ("identity", "pcreg_net", "voxelmorph", "transmorph"), f"table3_{d}")
        for col in ("tncc_mean", "tncg_mean", "ncc_mean", "ncc_paper"):
            if col not in t3:
                problems.append(f"table3_{d}: no column {col}")
        if temporal and "tncc_mean" in t3 and not np.isfinite(t3.loc[t3["run"] == "pcreg_net", "tncc_mean"]).all():
            problems.append(f"table3_{d}: TNCC of PCReg-Net is not a number on the temporal set")
    geo = _table(run_dir, "geometry", "fire")
    problems += _rows_problems(geo, ("identity", "sift", "demons", "horn_schunck", "syn"), "geometry_fire")
    for c in ("S", "P", "A"):
        for col in (f"auc_{c}", f"failed_pct_{c}", f"inaccurate_pct_{c}", f"acceptable_pct_{c}"):
            if col not in geo:
                problems.append(f"geometry_fire: no column {col}")
            elif not np.isfinite(geo.loc[geo["run"] == "sift", col]).all():
                problems.append(f"geometry_fire: {col} of SIFT is not a number")
    if "mauc" in geo and not np.isfinite(geo.loc[geo["run"] == "sift", "mauc"]).all():
        problems.append("geometry_fire: mAUC of SIFT is not a number")
    md = (run_dir / "results" / "tables" / f"{TABLES['geometry'].format(dataset='fire')}.md").read_text()
    if "768" not in md:
        problems.append("geometry_fire.md: the note does not state the 768-px working size")
    return problems


def _sample(field: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Pull-back field ``(2, H, W)`` (row, col) at points ``(N, 2)`` (x, y), bilinear: displacement (dx, dy)."""
    coords = [xy[:, 1], xy[:, 0]]
    dy = ndimage.map_coordinates(field[0].astype(np.float64), coords, order=1, mode="nearest")
    dx = ndimage.map_coordinates(field[1].astype(np.float64), coords, order=1, mode="nearest")
    return np.stack([dx, dy], axis=1)


def geometry_rows(run_dir: Path, truth: list[dict], runs: tuple[str, ...] = ("identity", "sift", "syn", "demons",
                                                                             "horn_schunck")) -> pd.DataFrame:
    """Per (run, pair): mean distance (original px) between the fixed control points mapped by the run's field
    and ``H(x1)``."""
    ds = PreparedDataset(run_dir / "data" / "fire")
    scale = ds.original_scale
    pair_ids = ds.split("test").pair_ids
    cp_dir = run_dir / "data" / "downloads" / "FIRE" / "FIRE" / "Ground Truth"
    h_of = {t["pair_id"]: (t["category"], np.array(t["homography"])) for t in truth}
    rows = []
    for run in runs:
        fields = np.load(run_dir / "results" / "fire" / run / "fields.npy", mmap_mode="r")
        for i, pid in enumerate(pair_ids):
            cat, h = h_of[pid]
            x1 = np.loadtxt(cp_dir / f"control_points_{pid}_1_2.txt", ndmin=2)[:, :2]
            p = (x1 + 0.5) / scale - 0.5                    # original -> working px (pixel centres aligned)
            q = p + _sample(np.asarray(fields[i]), p)       # pull-back: fixed point p sits at p + u(p) in moving
            mapped = (q + 0.5) * scale - 0.5                # working -> original px
            err = np.linalg.norm(mapped - apply_homography(h, x1), axis=1)
            rows.append({"run": run, "pair_id": pid, "category": cat, "mean_error_orig_px": float(err.mean()),
                         "max_error_orig_px": float(err.max())})
    return pd.DataFrame(rows)


def geometry_problems(rows: pd.DataFrame) -> list[str]:
    """Pairs whose known geometry a method had to recover (:data:`GEOMETRY_TOLERANCE_PX`) and did not."""
    problems = []
    for run, (cats, tol) in GEOMETRY_TOLERANCE_PX.items():
        sub = rows[(rows["run"] == run) & rows["category"].isin(cats)]
        if sub.empty:
            problems.append(f"geometry: no {run} pairs of categories {'/'.join(cats)} to check")
        for r in sub.itertuples():
            if not r.mean_error_orig_px <= tol:
                problems.append(f"geometry: {run} on {r.pair_id} misses the known homography by "
                                f"{r.mean_error_orig_px:.1f} original px (tolerance {tol:g})")
    ident = rows[rows["run"] == "identity"]
    if not ident.empty and not (ident["mean_error_orig_px"] > 10).all():
        problems.append("geometry: the unregistered pairs are already aligned (the stand-in tests nothing)")
    return problems


def memory_problems(run_dir: Path, config: dict) -> list[str]:
    """Jobs whose peak resident memory (Snakemake benchmark ``max_rss``, MB) exceeds their step's ``mem_mb``."""
    problems = []
    bench = run_dir / "results" / "benchmarks" / "rules"
    for folder, step in MEMORY_STEPS.items():
        for tsv in sorted((bench / folder).rglob("*.tsv")):
            rel = tsv.relative_to(bench / folder).with_suffix("").parts
            limit = config["resources"][step]["mem_mb"]
            if step in ("fit", "register") and len(rel) >= 2:  # <dataset>/<run>[/<shard>]: the run's override
                limit = config["methods"][rel[1]].get("resources", {}).get(step, {}).get("mem_mb", limit)
            rss = pd.read_csv(tsv, sep="\t")["max_rss"]
            rss = pd.to_numeric(rss, errors="coerce").max()
            if np.isfinite(rss) and rss > limit:
                problems.append(f"memory: {folder}/{'/'.join(rel)} peaked at {rss:.0f} MB, above the "
                                f"{limit} MB its step declares")
    return problems


def job_times(run_dir: Path) -> dict[str, float]:
    """Number of jobs and the sums of their wall and CPU seconds (Snakemake benchmark files)."""
    files = sorted((run_dir / "results" / "benchmarks" / "rules").rglob("*.tsv"))
    frames = [pd.read_csv(f, sep="\t") for f in files]
    wall = sum(float(pd.to_numeric(f["s"], errors="coerce").sum()) for f in frames)
    cpu = sum(float(pd.to_numeric(f["cpu_time"], errors="coerce").sum()) for f in frames if "cpu_time" in f)
    return {"jobs": len(files), "wall_s": wall, "cpu_s": cpu}


def check_run(run_dir: Path, standins: dict) -> tuple[list[str], pd.DataFrame]:
    """Every check of the module docstring; ``(problems, geometry rows)``."""
    datasets = {"fire-reg-256": {"ablation": True}, "fire": {},
                "or-pam-reg-4k": {"table3": True, "landmarks": False},
                "or-pam-reg-temporal-26k": {"table3": True, "landmarks": False}}
    problems = [f"missing output {p}" for p in expected_files(datasets) if not (run_dir / p).is_file()]
    if problems:
        return problems, pd.DataFrame()
    problems += table_problems(run_dir)
    rows = geometry_rows(run_dir, standins["fire_truth"])
    problems += geometry_problems(rows)
    # the run's own validated config, as the manifest recorded it (spec files are named by content hash)
    config = json.loads((run_dir / "results" / "manifest.json").read_text())["config"]
    problems += memory_problems(run_dir, config)
    return problems, rows
