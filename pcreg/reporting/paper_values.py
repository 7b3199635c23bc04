"""The numbers printed in the PCReg-Net paper's Tables 1-3, as data (``pcreg/data/paper_values.csv``).

Tables put the paper's value next to the suite's own; ``pcreg/data/README.md``
documents the columns and every judgement made while transcribing.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

COLUMNS = ["table", "dataset", "row", "group", "method_id", "metric", "value", "decimals", "source"]


def load_paper_values() -> pd.DataFrame:
    """The paper's values in long format, one row per (table, printed row, metric).

    ``method_id`` is ``""`` for rows the suite does not run (SAS-Net, the odd-only
    reference); ``value`` is a float and ``decimals`` the number of decimals printed.
    """
    with resources.files("pcreg").joinpath("data/paper_values.csv").open("r", encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype={"row": str, "group": str, "method_id": str, "metric": str, "source": str},
                         keep_default_na=False, na_values={"value": [""]})
    df["value"] = df["value"].astype(float)
    return df[COLUMNS]


def paper_datasets() -> list[str]:
    """The paper's datasets a config's ``paper_reference`` may name (those with values in the data file)."""
    return sorted(set(load_paper_values()["dataset"]))


def temporal_paper_datasets() -> list[str]:
    """The paper's datasets with a Table 3 (intra-frame and temporal metrics): the OR-PAM ones."""
    df = load_paper_values()
    return sorted(set(df.loc[df["table"] == 3, "dataset"]))


def paper_value(table: int, dataset: str, method_id: str, metric: str) -> float | None:
    """The paper's value for one cell, or ``None`` where the paper prints none (so tables show a dash)."""
    df = load_paper_values()
    hit = df[(df["table"] == table) & (df["dataset"] == dataset) & (df["method_id"] == method_id)
             & (df["metric"] == metric)]
    if hit.empty:
        return None
    if len(hit) > 1:
        raise ValueError(f"paper_values.csv has {len(hit)} rows for table {table}, {dataset}, {method_id}, {metric}")
    return float(hit["value"].iloc[0])
