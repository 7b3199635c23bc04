"""The on-disk dataset format: round trip and atomic placement."""

import numpy as np
import pytest

from pcreg.datasets.format import DatasetWriter, PreparedDataset


def _write(root, n_test=2, fail_after=None):
    with DatasetWriter(root, name="t", dataset_type="unit", image_shape=(6, 5),
                       split_sizes={"train": 1, "val": 1, "test": n_test}, has_field=True) as w:
        for split, n in (("train", 1), ("val", 1), ("test", n_test)):
            for i in range(n):
                if fail_after is not None and split == "test" and i == fail_after:
                    raise RuntimeError("interrupted")
                img = np.full((6, 5), 0.1 * (i + 1), np.float32)
                w.add(split, f"{split}{i}", img, img + 0.5, field=np.ones((2, 6, 5)) * i, category="S",
                      fixed_xy=[[1, 2], [3, 4]], moving_xy=[[1.5, 2.5], [3.5, 4.5]])


def test_round_trip(tmp_path):
    _write(tmp_path / "ds")
    ds = PreparedDataset(tmp_path / "ds")
    test = ds.split("test")
    assert test.pair_ids == ["test0", "test1"]
    mov, fix = test.pair(1)
    assert mov[0, 0] == pytest.approx(0.2) and fix[0, 0] == pytest.approx(0.7)
    assert np.all(test.field[1] == 1)
    fxy, mxy = test.landmarks_of("test0")
    np.testing.assert_allclose(fxy, [[1, 2], [3, 4]])
    np.testing.assert_allclose(mxy, [[1.5, 2.5], [3.5, 4.5]])
    assert isinstance(test.moving, np.memmap)  # read lazily


def test_interrupted_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        _write(tmp_path / "ds", n_test=3, fail_after=1)
    assert not (tmp_path / "ds").exists()
    assert not (tmp_path / "ds.partial").exists()


def test_incomplete_split_is_rejected(tmp_path):
    w = DatasetWriter(tmp_path / "ds", name="t", dataset_type="unit", image_shape=(4, 4),
                      split_sizes={"train": 1, "val": 0, "test": 0}, has_field=False)
    with pytest.raises(ValueError, match="0 of 1"):
        w.close()


def test_cluster_column_defaults_and_old_manifests_still_load(tmp_path):
    """The independent unit: given, else the sequence, else the pair id; manifests without the column load."""
    import pandas as pd

    root = tmp_path / "ds"
    with DatasetWriter(root, name="t", dataset_type="unit", image_shape=(4, 4),
                       split_sizes={"train": 0, "val": 0, "test": 3}, has_field=False) as w:
        img = np.zeros((4, 4), np.float32)
        w.add("test", "a_y0_x0", img, img, cluster="A")
        w.add("test", "s1-f0", img, img, sequence="s1")
        w.add("test", "lone", img, img)
    assert PreparedDataset(root).split("test").manifest["cluster"].tolist() == ["A", "s1", "lone"]
    manifest = pd.read_csv(root / "manifest.csv").drop(columns="cluster")  # prepared before the column existed
    manifest.to_csv(root / "manifest.csv", index=False)
    assert PreparedDataset(root).split("test").manifest["cluster"].tolist() == ["a_y0_x0", "s1", "lone"]


def test_prepare_replaces_its_own_dataset_even_without_dataset_json(tmp_path):
    _write(tmp_path / "ds")
    _write(tmp_path / "ds", n_test=3)  # a re-prepare replaces the suite's own dataset
    assert len(PreparedDataset(tmp_path / "ds").split("test")) == 3
    (tmp_path / "ds" / "dataset.json").unlink()  # Snakemake removes a job's output before re-running it
    _write(tmp_path / "ds", n_test=2)
    assert len(PreparedDataset(tmp_path / "ds").split("test")) == 2


@pytest.mark.parametrize("foreign", ["notes.txt", "dataset.json", "train/my_image.png"])
def test_prepare_never_deletes_a_folder_it_did_not_create(tmp_path, foreign):
    from pcreg.errors import UserError

    root = tmp_path / "ds"
    (root / foreign).parent.mkdir(parents=True, exist_ok=True)
    (root / foreign).write_text('{"name": "mine"}')  # a dataset.json that is not the suite's: no format_version
    with pytest.raises(UserError, match="is not a dataset prepared by this suite.*stopped without touching it"):
        _write(root)
    assert (root / foreign).read_text() == '{"name": "mine"}'
    assert not (tmp_path / "ds.partial").exists()


def test_a_foreign_partial_folder_is_not_deleted(tmp_path):
    from pcreg.errors import UserError

    (tmp_path / "ds.partial").mkdir()
    (tmp_path / "ds.partial" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not left by this suite"):
        _write(tmp_path / "ds")
    assert (tmp_path / "ds.partial" / "keep.txt").read_text() == "mine"
