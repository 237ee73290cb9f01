"""search.py info and the CLI error contract: exit 2 and one line, no traceback."""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from space import REFERENCES
from common.cli import ArgumentParser
from common.cli import run_main as space_cli_run

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


# ----- every file the tool reads: one reader, one clear error --------------------------------

def _readers():
    from search import load_config
    from search._export import load_selection
    from space import Arch, SearchSpace
    from training import read_recipe

    return {
        "arch": lambda p: Arch.from_yaml(p),
        "space": lambda p: SearchSpace.from_yaml(p),
        "search config": lambda p: load_config(str(p)),
        "recipe": lambda p: read_recipe(p),
        "selection": lambda p: load_selection(p.parent),
    }


def _bad_files(tmp_path):
    """Random bytes (seeded), NUL-laden binary, Latin-1 text, UTF-16 text."""
    import numpy as np

    rng = np.random.default_rng(13)
    contents = [rng.integers(0, 256, size=int(rng.integers(1, 600)), dtype=np.uint8).tobytes() for _ in range(12)]
    contents += [b"\x7fELF\x02\x01\x01\x00" + bytes(64), "widths: [48, 96, 192]  # Größe\n".encode("latin-1"),
                 "widths: [48, 96, 192]\n".encode("utf-16")]
    for i, content in enumerate(contents):
        folder = tmp_path / f"f{i}"
        folder.mkdir()
        path = folder / "best.yaml"  # the name the selection reader looks for; the others take any name
        path.write_bytes(content)
        yield path


def test_binary_and_non_utf8_files_are_one_clear_error(tmp_path):
    from common import UserError

    for path in _bad_files(tmp_path):
        for what, read in _readers().items():
            with pytest.raises(UserError) as exc:
                read(path)
            message = str(exc.value)
            assert len(message.splitlines()) == 1 and str(path) in message, (what, path.read_bytes()[:20], message)


def test_scripts_on_a_binary_file_exit_2_with_one_line(tmp_path):
    path = tmp_path / "random.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    for argv in (["search.py", "info", str(path)], ["validate.py", "-c", str(path)],
                 ["search.py", "search", "-c", str(path)]):
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
        errors = [line for line in done.stderr.splitlines() if line.strip() and "WARNING" not in line]
        assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, (argv, done.stderr)
        assert "not UTF-8 text" in errors[0] and str(path) in errors[0], errors[0]


# ----- instant CLI: no MindSpore for --help, info and bad input ------------------------------

def test_space_search_and_the_cli_do_not_import_mindspore():
    code = (
        "import contextlib, io, sys\n"
        "import space, search\n"
        "from search._main import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):\n"
        "    assert main(['info', 'x0_5']) == 0\n"
        "    for argv in (['--help'], ['search', '--help'], ['info', 'x0_5', '--resolution', 'abc']):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "assert '1,365,792' in out.getvalue()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mindspore'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-2000:]


# ----- flag help from the config's field definitions -----------------------------------------

def _search_parser():
    from search._cli import COMMANDS

    parser = ArgumentParser(prog="search.py search")  # the scripts' parser: both flag spellings
    next(c for c in COMMANDS if c.NAME == "search").add_arguments(parser)
    return parser


def _train_parser():
    from training._config import add_config_arguments

    parser = ArgumentParser(prog="train.py")
    add_config_arguments(parser)
    return parser


@pytest.mark.parametrize("make_parser, config", [(_search_parser, "search._config.SearchConfig"),
                                                 (_train_parser, "training._config.TrainConfig")])
def test_every_config_flag_says_what_it_does(make_parser, config):
    import dataclasses
    import importlib

    module, name = config.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    parser = make_parser()
    shown = "".join(parser.format_help().split())  # argparse wraps lines, also at hyphens
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        action = next(a for a in parser._actions if flag in a.option_strings)
        assert f.metadata["help"] and action.help.startswith(f.metadata["help"]), flag
        unit = f"[{f.metadata['unit']}]" if f.metadata.get("unit") else ""
        assert "".join(f"{flag} {action.metavar} {f.metadata['help']}{unit}(default:".split()) in shown, flag
    for action in parser._actions:  # no flag without a description, none documented twice
        if action.option_strings and action.help != argparse.SUPPRESS:
            assert action.help and not action.help.startswith("(default"), action.option_strings


def test_search_help_lines_name_units():
    done = subprocess.run([sys.executable, "search.py", "search", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    text = " ".join(done.stdout.replace("-\n", "-").split())
    assert done.returncode == 0
    assert "--budget-ratio X relative budget: latency <= this x the reference's, measured alongside [x reference]" \
        " (default: none)" in text
    assert "--timeout X stop starting new trials after this long, per worker [seconds] (default: none)" in text


def test_both_flag_spellings_and_text_values():
    from search import SearchConfig, load_config
    from common.settings import given

    parser = _search_parser()
    args = parser.parse_args(["--n_trials", "7", "--budget-ratio", "2", "--timeout", "none", "--quiet", "yes",
                              "--space", "configs/spaces/shufflenetv2_small.yaml"])
    cfg = load_config(None, given(args, SearchConfig))
    assert (cfg.n_trials, cfg.budget_ratio, cfg.timeout, cfg.quiet) == (7, 2.0, None, True)
    assert isinstance(cfg.budget_ratio, float)
