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
    assert cfg["datasets"]["d"]["params"]["pairs"]["test"] == 24


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
