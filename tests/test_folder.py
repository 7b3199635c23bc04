"""The ``folder`` dataset type: hand-made pairs (8/16-bit, gray/RGB, odd sizes) prepared and read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pcreg.config import validate_params
from pcreg.datasets import folder
from pcreg.datasets.format import PreparedDataset
from pcreg.errors import UserError
from pcreg.metrics import tre

pytestmark = pytest.mark.timeout(60)


def _write(path: Path, img: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


def _blob(h: int, w: int, cx: float, cy: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 6.0**2))


def make_pairs(root: Path) -> Path:
    """Three pairs: 8-bit gray 64x64, 16-bit gray 64x64, 8-bit RGB 48x96 (a different size), one with landmarks."""
    _write(root / "moving" / "a.png", (_blob(64, 64, 30, 20) * 255).astype(np.uint8))
    _write(root / "fixed" / "a.png", (_blob(64, 64, 26, 22) * 255).astype(np.uint8))
    (root / "landmarks").mkdir(parents=True)
    (root / "landmarks" / "a.csv").write_text("fixed_x,fixed_y,moving_x,moving_y\n26,22,30,20\n10.5,40,14.5,38\n")
    _write(root / "moving" / "b.png", (_blob(64, 64, 32, 32) * 65535).astype(np.uint16))
    _write(root / "fixed" / "b.png", (_blob(64, 64, 32, 32) * 30000).astype(np.uint16))
    rgb = np.zeros((48, 96, 3), np.uint8)
    rgb[..., 1] = 200  # OpenCV writes BGR: channel 1 is green either way
    _write(root / "moving" / "c.png", rgb)
    _write(root / "fixed" / "c.png", rgb)
    return root


def _params(root: Path, **kw: object) -> dict:
    return validate_params(folder, {"path": str(root), "image_size": [32, 32], **kw}, "datasets.mine.params")


def test_prepare_and_read_back(tmp_path: Path) -> None:
    src = make_pairs(tmp_path / "pairs")
    out = folder.prepare(tmp_path / "prepared", "mine", _params(src), seed=0)
    ds = PreparedDataset(out)
    test = ds.split("test")
    assert test.pair_ids == ["a", "b", "c"] and ds.image_shape == (32, 32)
    assert len(ds.split("train")) == 0
    # mixed input sizes (64x64 and 48x96) -> no single original scale
    assert ds.original_scale == 1.0
    moving, fixed = test.pair(1)  # 16-bit: full-range scaling keeps the relative brightness of the two
    assert moving.max() == pytest.approx(1.0, abs=0.02) and fixed.max() == pytest.approx(30000 / 65535, abs=0.02)
    m_c, _ = test.pair(2)
    assert m_c.mean() == pytest.approx(0.587 * 200 / 255, abs=1e-3)  # BT.601 luma of pure green
    f_xy, m_xy = test.landmarks_of("a")
    np.testing.assert_allclose(f_xy[0], (np.array([26, 22]) + 0.5) * 0.5 - 0.5)  # 64 -> 32, centres aligned
    assert test.landmarks_of("b") is None
    # the resized blob centres sit where the mapped landmarks say
    mov_a, fix_a = test.pair(0)
    ys, xs = np.mgrid[:32, :32]
    centroid = np.array([(fix_a * xs).sum(), (fix_a * ys).sum()]) / fix_a.sum()
    np.testing.assert_allclose(centroid, f_xy[0], atol=0.3)
    assert tre(np.zeros((2, 32, 32), np.float32), f_xy, m_xy) == pytest.approx(np.hypot(2, 1), abs=1e-6)


def test_uniform_sizes_record_original_scale_and_splits(tmp_path: Path) -> None:
    src = tmp_path / "pairs"
    for i in range(6):
        img = (_blob(64, 64, 20 + i, 30) * 255).astype(np.uint8)
        _write(src / f"img{i}_moving.tif", img)
        _write(src / f"img{i}_fixed.tif", img)
    params = _params(src, fractions={"train": 0.5, "val": 0.0, "test": 0.5})
    ds = PreparedDataset(folder.prepare(tmp_path / "out", "mine", params, seed=4))
    assert ds.original_scale == pytest.approx(2.0)  # 64 -> 32 for every pair
    assert len(ds.split("train")) == 3 and len(ds.split("test")) == 3
    again = PreparedDataset(folder.prepare(tmp_path / "out2", "mine", params, seed=4))
    assert again.manifest["pair_id"].tolist() == ds.manifest["pair_id"].tolist()


def test_pad_mode_keeps_pixels_and_landmarks(tmp_path: Path) -> None:
    src = make_pairs(tmp_path / "pairs")
    ds = PreparedDataset(folder.prepare(tmp_path / "out", "mine", _params(src, image_size=[64, 96], resize="pad"), 0))
    moving, _ = ds.split("test").pair(0)
    assert moving.shape == (64, 96) and np.all(moving[:, 64:] == 0)
    f_xy, _ = ds.split("test").landmarks_of("a")
    np.testing.assert_allclose(f_xy, [[26, 22], [10.5, 40]])
    with pytest.raises(UserError, match="larger than image_size"):
        folder.prepare(tmp_path / "bad", "mine", _params(src, image_size=[32, 32], resize="pad"), 0)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()


def test_unmatched_files_are_listed(tmp_path: Path) -> None:
    src = make_pairs(tmp_path / "pairs")
    _write(src / "moving" / "orphan.png", np.zeros((8, 8), np.uint8))
    _write(src / "fixed" / "lonely.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(UserError, match=r"moving without fixed: orphan\.png; fixed without moving: lonely\.png"):
        folder.prepare(tmp_path / "out", "mine", _params(src), 0)


def test_unreadable_image(tmp_path: Path) -> None:
    src = make_pairs(tmp_path / "pairs")
    (src / "fixed" / "b.png").write_bytes(b"not a png at all")
    with pytest.raises(UserError, match=r"cannot read image .*b\.png"):
        folder.prepare(tmp_path / "out", "mine", _params(src), 0)
    assert not (tmp_path / "out").exists()


def test_size_mismatch_within_a_pair(tmp_path: Path) -> None:
    src = make_pairs(tmp_path / "pairs")
    _write(src / "fixed" / "a.png", np.zeros((60, 64), np.uint8))
    with pytest.raises(UserError, match=r"size mismatch in pair 'a'"):
        folder.prepare(tmp_path / "out", "mine", _params(src), 0)


def test_resize_none_requires_one_size(tmp_path: Path) -> None:
    src = make_pairs(tmp_path / "pairs")
    with pytest.raises(UserError, match="different sizes"):
        folder.prepare(tmp_path / "out", "mine", _params(src, resize="none"), 0)


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no image pairs found"):
        folder.prepare(tmp_path / "out", "mine", _params(tmp_path / "empty"), 0)
    with pytest.raises(UserError, match="not a directory"):
        folder.prepare(tmp_path / "out", "mine", _params(tmp_path / "nope"), 0)
    with pytest.raises(UserError, match="set params.path"):
        folder.prepare(tmp_path / "out", "mine", validate_params(folder, {}, "x"), 0)


def test_bad_landmark_csv(tmp_path: Path) -> None:
    src = make_pairs(tmp_path / "pairs")
    (src / "landmarks" / "a.csv").write_text("x,y\n1,2\n")
    with pytest.raises(UserError, match="missing column"):
        folder.prepare(tmp_path / "out", "mine", _params(src), 0)


def test_example_config_pairs(tmp_path: Path) -> None:
    """The example under examples/folder-pairs (used by config/folder-example.yaml) prepares cleanly."""
    src = Path(__file__).resolve().parent.parent / "examples" / "folder-pairs"
    params = validate_params(folder, {"path": str(src), "image_size": [64, 64],
                                      "fractions": {"train": 0.5, "val": 0.0, "test": 0.5}}, "x")
    ds = PreparedDataset(folder.prepare(tmp_path / "out", "example", params, 0))
    assert len(ds.manifest) >= 4 and ds.meta["has_landmarks"]


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    """OpenCV decodes a truncated JPEG with grey rows and only warns: the suite must refuse it by name."""
    import cv2

    src = make_pairs(tmp_path / "pairs")
    (src / "fixed" / "a.png").unlink()
    img = (255 * _blob(64, 64, 26, 22)).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    data = buf.tobytes()
    (src / "fixed" / "a.jpg").write_bytes(data[: len(data) * 2 // 3])
    assert cv2.imread(str(src / "fixed" / "a.jpg")) is not None  # the hazard: OpenCV accepts it
    with pytest.raises(UserError, match=r"a\.jpg: truncated or corrupt JPEG") as info:
        folder.prepare(tmp_path / "out", "mine", _params(src), 0)
    assert "\n" not in str(info.value)
    (src / "fixed" / "a.jpg").write_bytes(data)  # the complete file is accepted
    folder.prepare(tmp_path / "out", "mine", _params(src), 0)


def test_non_numeric_landmark_names_file_row_and_column(tmp_path: Path) -> None:
    src = make_pairs(tmp_path / "pairs")
    (src / "landmarks" / "a.csv").write_text("fixed_x,fixed_y,moving_x,moving_y\n26,22,30,20\n10.5,4O,14.5,38\n")
    with pytest.raises(UserError, match=r"a\.csv: row 3 .*column fixed_y: '4O' is not a finite number") as info:
        folder.prepare(tmp_path / "out", "mine", _params(src), 0)
    assert "\n" not in str(info.value)


def test_input_folder_inside_the_output_is_refused_and_survives(tmp_path: Path) -> None:
    out = tmp_path / "data" / "mine"
    src = make_pairs(out / "my-pairs")
    (out / "notes.txt").write_text("my notes")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(UserError, match="lies inside the dataset's output folder") as info:
        folder.prepare(out, "mine", _params(src), seed=0)
    assert "\n" not in str(info.value)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert (out / "notes.txt").read_text() == "my notes"
    # The same input elsewhere prepares; a user's folder at the output path is not replaced either.
    elsewhere = make_pairs(tmp_path / "pairs")
    with pytest.raises(UserError, match="not a dataset prepared by this suite"):
        folder.prepare(out, "mine", _params(elsewhere), seed=0)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert PreparedDataset(folder.prepare(tmp_path / "data" / "other", "other", _params(elsewhere), seed=0))
