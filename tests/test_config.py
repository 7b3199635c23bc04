"""Config validation: defaults filled, bad values named by key, one-line errors from the command line."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pcreg.config import validate_config
from pcreg.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


def _cfg(**changes):
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    cfg.update(changes)
    return cfg


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = validate_config(yaml.safe_load((ROOT / "config" / name).read_text()))
    assert cfg["methods"]["identity"]["method"] == "identity"
    assert cfg["methods"]["identity"]["label"] == "Unregistered"


def test_defaults_are_filled():
    cfg = validate_config({"datasets": {"d": {"type": "synthetic-fundus"}}, "methods": {"identity": {}}})
    assert cfg["seed"] == 0 and cfg["shards"] == 2 and cfg["threads"]["register"] == 1
    assert cfg["datasets"]["d"]["params"]["image_size"] == 128
    assert cfg["datasets"]["d"]["params"]["pairs"]["test"] == 32


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"seed": -1}, "seed"),
        ({"shards": "two"}, "shards"),
        ({"datasets": {"synthetic-fundus": {"type": "synthetic-fundus", "params": {"image_size": "big"}}}},
         "datasets.synthetic-fundus.params.image_size"),
        ({"datasets": {"x": {"type": "synthetic-fundus", "params": {"pairs": {"test": 0}}}}},
         "datasets.x.params.pairs.test"),
        ({"methods": {"identity": {"group": "magic"}}}, "methods.identity.group"),
        ({"colour": "blue"}, "(top level)"),
    ],
)
def test_bad_value_names_the_key(changes, key):
    with pytest.raises(UserError) as err:
        validate_config(_cfg(**changes))
    assert f"config error at {key}:" in str(err.value)


def test_unknown_names_are_reported():
    msg = "config error at methods.nope.method: unknown method .nope.; available methods: .*identity"
    with pytest.raises(UserError, match=msg):
        validate_config(_cfg(methods={"nope": {}}))
    with pytest.raises(UserError, match="config error at datasets.d.type: unknown dataset type .foo."):
        validate_config(_cfg(datasets={"d": {"type": "foo"}}))


def test_cli_prints_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_cfg(shards=0)))
    proc = subprocess.run([sys.executable, "-m", "pcreg", "validate-config", str(bad)], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "pcreg: error: config error at shards: 0 is less than the minimum of 1"
    ok = subprocess.run([sys.executable, "-m", "pcreg", "validate-config", str(ROOT / "config" / "smoke.yaml")],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and "config OK" in ok.stdout


def test_stats_reference_must_be_a_configured_method(tmp_path):
    cfg = _cfg(methods={"identity": {}, "sift": {}}, stats={"reference": "pcreg_net"})
    with pytest.raises(UserError, match="config error at stats.reference: 'pcreg_net' is not a method run of this "
                                        "config .identity, sift."):
        validate_config(cfg)
    assert validate_config(_cfg(methods={"identity": {}, "sift": {}}, stats={"reference": "sift"}))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "pcreg", "validate-config", str(bad)], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "stats.reference" in proc.stderr


def test_paper_reference_must_be_a_dataset_of_the_paper_values_file():
    cfg = _cfg()
    name = next(iter(cfg["datasets"]))
    cfg["datasets"][name]["paper_reference"] = "orpam-8k"
    with pytest.raises(UserError, match=f"config error at datasets.{name}.paper_reference: 'orpam-8k' is not one of"):
        validate_config(cfg)


def test_device_cuda_without_cuda_is_caught_by_validate_config(tmp_path, monkeypatch, capsys):
    import torch

    from pcreg.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"device": "cuda", "datasets": {"d": {"type": "synthetic-fundus"}},
                                   "methods": {"identity": {}}}))
    assert main(["validate-config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pcreg: error: config error at device: 'cuda', but ") and "\n" not in err
    assert main(["validate-config", "--no-device-check", str(cfg)]) in (0, None)
    # At run time too: one line, not a traceback from deep inside torch.
    from pcreg.methods.training import resolve_device

    with pytest.raises(UserError, match="config error at device: 'cuda'"):
        resolve_device("cuda")


def test_seeds_expand_into_runs_with_their_own_seed_and_folder():
    from pcreg.config import expand_seeds, validate_config
    from pcreg.methods.runner import run_seed

    base = yaml.safe_load(Path("config/smoke.yaml").read_text())
    base["methods"] = {"identity": {"group": "reference"},
                       "abl": {"method": "pcreg_net", "group": "ablation", "seeds": 3,
                               "seed_datasets": [next(iter(base["datasets"]))], "params": {"epochs": 1}}}
    base["stats"]["reference"] = "abl"  # smoke.yaml's reference (pcreg_net) is not a run of this config
    cfg = validate_config(base)
    assert list(cfg["methods"]) == ["identity", "abl", "abl.seed1", "abl.seed2"]
    assert [cfg["methods"][r]["seed_offset"] for r in ("abl", "abl.seed1", "abl.seed2")] == [0, 1, 2]
    assert cfg["methods"]["abl.seed2"]["seed_of"] == "abl" and not cfg["methods"]["abl"].get("seed_of")
    assert cfg["methods"]["abl.seed1"]["datasets"] == [next(iter(base["datasets"]))]
    assert [run_seed(cfg["methods"][r], 5) for r in ("abl", "abl.seed1", "abl.seed2")] == [5, 6, 7]
    assert list(expand_seeds(cfg["methods"])) == list(cfg["methods"])  # idempotent


def test_paper_config_runs_fixed_epochs_with_the_default_ablation_labels():
    from pcreg.config import load_config
    from pcreg.methods.registry import get_method_class

    paper, default = load_config("config/paper.yaml"), load_config("config/config.yaml")
    assert "reconciles" not in Path("config/paper.yaml").read_text()
    for run_id, spec in paper["methods"].items():
        if get_method_class(spec["method"]).is_trainable():
            assert spec["params"]["patience"] == 0, run_id  # the paper's epoch counts, no early stopping
            assert spec["params"]["epochs"] == (20 if spec["group"] == "ablation" else 100), run_id
        if spec["group"] == "ablation" and run_id in default["methods"]:
            assert spec["label"] == default["methods"][run_id]["label"], run_id
            assert spec.get("seeds", 1) >= 3 or spec.get("seed_of"), run_id


def test_default_config_reports_fair_starts_pre_alignment_and_seeded_ablations():
    from pcreg.config import load_config

    cfg = load_config("config/config.yaml")["methods"]
    assert cfg["ants_affine"]["label"] == "ANTs affine"
    assert cfg["syn_sift_init"]["method"] == "syn" and cfg["syn_sift_init"]["params"]["init"] != "none"
    assert cfg["syn"]["params"]["init"] == "none"  # the published configuration stays its own row
    for run_id, spec in cfg.items():
        assert "GT-field sup." not in spec["label"], run_id  # computed from what training did, never typed
        if spec["group"] == "ablation" and not spec.get("seed_of"):
            assert spec["seeds"] >= 3, run_id


def test_default_config_trains_every_learned_row_on_the_same_pairs():
    """Issue 22: PCReg-Net must not train on fresh pairs while the learned baselines see the 48 prepared ones (or the
    other way round): every trainable row of the default config takes the same fresh_pairs setting."""
    from pcreg.config import load_config
    from pcreg.methods.registry import get_method_class
    from pcreg.schema import validate_params

    cfg = load_config("config/config.yaml")["methods"]
    fresh = {run_id: validate_params(get_method_class(spec["method"]), spec.get("params", {}), run_id)["fresh_pairs"]
             for run_id, spec in cfg.items() if get_method_class(spec["method"]).is_trainable()}
    assert len(fresh) >= 3 and len(set(fresh.values())) == 1, fresh


def test_validate_config_merges_config_files_key_by_key_as_snakemake_does(tmp_path):
    """An overlay that sets one param of a dataset (config/rehearsal.yaml over paper.yaml) is valid: the files are
    merged recursively, not replaced key by key at the top level."""
    from pcreg.cli import main

    assert main(["validate-config", "--no-device-check", str(ROOT / "config" / "paper.yaml"),
                 str(ROOT / "config" / "rehearsal.yaml")]) in (0, None)
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("datasets:\n  synthetic-fundus:\n    params: {image_size: 64}\n")
    assert main(["validate-config", str(ROOT / "config" / "smoke.yaml"), str(overlay)]) in (0, None)
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets:\n  synthetic-fundus:\n    params: {image_size: -1}\n")
    assert main(["validate-config", str(ROOT / "config" / "smoke.yaml"), str(bad)]) == 2
