"""search.py info and the CLI error contract: exit 2 and one line, no traceback."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from space import REFERENCES
from space._cli import run_main as space_cli_run

ROOT = Path(__file__).resolve().parent.parent


def _load_cli():
    spec = importlib.util.spec_from_file_location("search_cli", ROOT / "search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CLI = _load_cli()


def run_cli(capsys, *argv):
    """Run search.py in-process as the script does; return (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        space_cli_run(CLI.main, list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.mark.parametrize("name", list(REFERENCES))
def test_info_prints_reference_numbers(capsys, name):
    code, out, _ = run_cli(capsys, "info", name)
    ref = REFERENCES[name]
    assert code == 0
    assert f"{ref.params_trainable:,} trainable" in out
    assert f"{ref.params_with_bn_stats:,} with BN statistics" in out
    assert f"(reference {name})" in out
    assert "stage3" in out


def test_info_json_layers_and_yaml(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "info", "x1_0", "--json", "--resolution", "160")
    data = json.loads(out)
    assert code == 0 and data["resolution"] == 160 and data["reference"] == "x1_0"
    path = tmp_path / "found.yaml"
    path.write_text("arch:\n  widths: [64, 128, 256]\n  depths: [2, 4, 2]\n")
    code, out, _ = run_cli(capsys, "info", str(path), "--layers")
    assert code == 0 and "features.7.branch_main.7" in out and "classifier" in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["info", "x9_9"], "neither a reference model"),
        (["info", "missing.yaml"], "does not exist"),
        (["info", "x0_5", "--resolution", "abc"], "invalid int value"),
        (["info", "x0_5", "--resolution", "8"], "--resolution must be at least 32"),
        (["frobnicate"], "invalid choice"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, argv, needle):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "content, needle",
    [
        ("widths: [48, 96\n", "not valid YAML"),
        ("widths: [48, 96, 190]\ndepths: [4, 8, 4]\nstem: 96\n", "Arch.widths[0]: must be larger than the stem"),
        ("widths: [48, 96, 192]\ndepths: [4, 8, 4]\nkernel: 3\n", "unknown arch key(s) kernel"),
        ("- 1\n- 2\n", "an arch must be a mapping"),
    ],
)
def test_bad_yaml_is_one_line_exit_2(capsys, tmp_path, content, needle):
    path = tmp_path / "arch.yaml"
    path.write_text(content)
    code, _, err = run_cli(capsys, "info", str(path))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_script_entry_point():
    ok = subprocess.run([sys.executable, "search.py", "info", "x0_5"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "1,365,792" in ok.stdout
    bad = subprocess.run([sys.executable, "search.py", "info", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in bad.stderr
    helped = subprocess.run([sys.executable, "search.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert helped.returncode == 0 and "info" in helped.stdout


def test_readme_reference_table_is_what_the_cost_model_computes():
    from space._info import reference_table_markdown

    assert reference_table_markdown() in (ROOT / "README.md").read_text()
