"""The audit in the workflow: per-run re-runs through the runner's machinery, oracle, table and verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pcreg.methods.runner
from pcreg.config import validate_params
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.evaluation import audit
from pcreg.evaluation.audit_run import audit_run
from pcreg.methods.base import Method, Registration
from pcreg.metrics import ncc
from pcreg.reporting.audit_table import audit_table
from pcreg.reporting.tables import Run


class FixedCopier(Method):
    """A test-only 'learned' method that ignores the moving image and outputs (almost) the fixed image."""

    name = "fixed_copier"
    outputs_field = False

    def fit(self, train, val, workdir):  # noqa: ANN001 - makes the class trainable
        pass

    def load(self, workdir):  # noqa: ANN001
        # The method is built in a worker process: leave a mark the test can see.
        Path(workdir).mkdir(parents=True, exist_ok=True)
        (Path(workdir) / "loaded").touch()

    def register(self, moving, fixed):  # noqa: ANN001
        noise = np.random.default_rng(self.seed).normal(0, 0.01, fixed.shape)
        return Registration(image=np.clip(fixed + noise, 0, 1).astype(np.float32))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("fundus") / "d"
    module = get_dataset_type("synthetic-fundus")
    params = validate_params(module, {"image_size": 32, "pairs": {"train": 1, "val": 1, "test": 7}},
                             "t")
    module.prepare(root, "fundus", params, 0)
    return root


def test_audit_run_identity_and_table(data, tmp_path, monkeypatch):
    out = audit_run(data, {"id": "identity", "method": "identity", "params": {}}, tmp_path / "identity.csv",
                    n_pairs=5, seed=3)
    df = pd.read_csv(out, dtype={"pair_id": str})
    assert len(df) == 5 * 3 and set(df["condition"]) == set(audit.CONDITIONS)
    # The pairs are the seeded subset, and identity's 'normal' NCC is the input's NCC.
    test = PreparedDataset(data).split("test")
    idx = audit.select_pairs(len(test), 5, 3)
    assert list(df.loc[df["condition"] == "normal", "pair_id"]) == [test.pair_ids[i] for i in idx]
    first = df[df["condition"] == "normal"].iloc[0]
    assert first["ncc"] == pytest.approx(ncc(test.moving[idx[0]], test.fixed[idx[0]]), abs=1e-6)

    copier = FixedCopier(seed=3)
    monkeypatch.setattr(pcreg.methods.runner, "make_method", lambda spec, **kw: copier)
    copy_csv = audit_run(data, {"id": "copier", "method": "fixed_copier"}, tmp_path / "copier.csv", n_pairs=5,
                         seed=3, model_dir=tmp_path / "model")
    assert (tmp_path / "model" / "loaded").is_file()  # trainable methods load their model first

    runs = [Run("identity", "Unregistered", "reference", tmp_path / "x.csv"),
            Run("copier", "Copier", "deep", tmp_path / "y.csv")]
    paths = audit_table(data, runs, [out, copy_csv], tmp_path / "audit_fundus", "fundus", n_pairs=5, seed=3)
    summary = pd.read_csv(paths[0]).set_index("method")
    oracle = summary.loc[audit.ORACLE]
    # The oracle: NCC 1, no drop under either condition.
    assert oracle["ncc_normal"] == pytest.approx(1.0) and oracle["ncc_drop_blank"] == 0
    assert oracle["ncc_drop_shuffled"] == 0 and oracle["ssim_drop_shuffled"] == 0
    # Identity: the full drop (to chance under 'other pair', to 0 when blank).
    ident = summary.loc["identity"]
    assert ident["retained_shuffled"] == pytest.approx(0.0, abs=1e-9) and ident["verdict"] == "uses moving"
    assert ident["ncc_drop_shuffled"] == pytest.approx(ident["ncc_normal"] - ident["chance_ncc"])
    assert ident["ncc_blank"] == 0
    # The copier keeps its scores whatever moving image it gets.
    cop = summary.loc["copier"]
    assert cop["verdict"] == "copies fixed?" and cop["retained_shuffled"] > 0.9
    assert abs(cop["ncc_drop_shuffled"]) < 0.02
    md = paths[1].read_text()
    assert "Fixed-copy oracle" in md and "Copier: NCC" in md and "copies fixed?" in md
    assert "not registration" in md and md.count("not registration") == 2  # oracle and copier
    assert "\\begin{tabular}" in paths[2].read_text()
    page = paths[3].read_text()  # the report's view of the table
    assert page.count("<tr>") == 1 + 3 and "copies fixed?" in page


def test_audit_run_needs_a_model_for_trainable_methods(data, tmp_path, monkeypatch):
    monkeypatch.setattr(pcreg.methods.runner, "make_method", lambda spec, **kw: FixedCopier())
    with pytest.raises(ValueError, match="model directory"):
        audit_run(data, {"method": "fixed_copier"}, tmp_path / "a.csv", n_pairs=3, seed=0)


def test_audit_is_deterministic(data, tmp_path):
    spec = {"id": "identity", "method": "identity", "params": {}}
    a = pd.read_csv(audit_run(data, spec, tmp_path / "a.csv", n_pairs=4, seed=1))
    b = pd.read_csv(audit_run(data, spec, tmp_path / "b.csv", n_pairs=4, seed=1))
    pd.testing.assert_frame_equal(a, b)
    assert np.all(a.loc[a["condition"] == "shuffled", "donor"] >= 0)


def test_donors_share_no_cluster_and_field_methods_get_the_geometric_test(data, tmp_path):
    out = audit_run(data, {"id": "identity", "method": "identity", "params": {}}, tmp_path / "identity.csv",
                    n_pairs=7, seed=3)
    df = pd.read_csv(out, dtype={"pair_id": str, "cluster": str})
    normal = df[df["condition"] == "normal"].set_index("index")
    assert normal["cluster"].nunique() > 1  # the synthetic regions fall in several source cells
    for _, row in df[df["condition"] == "shuffled"].iterrows():
        assert normal.loc[row["donor"], "cluster"] != row["cluster"]
    # identity's field is the zero field: its geometric error is the identity error, gain 0
    assert df["geo_error"].notna().all()
    np.testing.assert_allclose(df["geo_error"], df["geo_identity"])
