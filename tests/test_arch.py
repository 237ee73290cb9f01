"""space.Arch: validation rules, serialisation, identity."""

from pathlib import Path

import pytest

from common import UserError
from space import Arch, ArchError, reference, reference_model, reference_name

GOOD = dict(stem=24, widths=(48, 96, 192), depths=(4, 8, 4), last=1024, kernels=(3, 3, 3))


def make(**changes):
    return Arch(**{**GOOD, **changes})


@pytest.mark.parametrize(
    "changes, field, rule",
    [
        (dict(widths=(47, 96, 192)), "widths[0]", "even"),
        (dict(widths=(48, 96, 191)), "widths[2]", "even"),
        (dict(widths=(48, 48, 192)), "widths[1]", "larger than widths[0]"),
        (dict(widths=(48, 96, 90)), "widths[2]", "larger than widths[1]"),
        (dict(widths=(24, 96, 192)), "widths[0]", "larger than the stem"),
        (dict(widths=(48, 96)), "widths", "3 values"),
        (dict(widths=(48, 96, 10000)), "widths[2]", "at most"),
        (dict(widths="48,96,192"), "widths", "list of 3 integers"),
        (dict(widths=(48.0, 96, 192)), "widths[0]", "integer"),
        (dict(depths=(0, 8, 4)), "depths[0]", "between 1 and"),
        (dict(depths=(4, 8, 33)), "depths[2]", "between 1 and"),
        (dict(depths=(4, True, 4)), "depths[1]", "integer"),
        (dict(kernels=(3, 4, 3)), "kernels[1]", "one of (3, 5, 7)"),
        (dict(kernels=(3, 3, 9)), "kernels[2]", "one of (3, 5, 7)"),
        (dict(stem=0), "stem", "between 1 and"),
        (dict(last=0), "last", "between 1 and"),
        (dict(last="1024"), "last", "integer"),
    ],
)
def test_every_rule_rejects_with_field_and_rule(changes, field, rule):
    with pytest.raises(ArchError) as exc:
        make(**changes)
    message = str(exc.value)
    assert f"Arch.{field}" in message
    assert rule in message


def test_arch_error_is_a_user_error():
    assert issubclass(ArchError, UserError)


def test_immutable_and_hashable():
    arch = make()
    with pytest.raises(AttributeError):
        arch.stem = 16  # type: ignore[misc]
    assert isinstance(arch.widths, tuple)
    assert len({arch, make(widths=[48, 96, 192])}) == 1  # lists normalise to tuples


def test_dict_and_yaml_round_trip(tmp_path: Path):
    arch = make(kernels=(3, 5, 7))
    assert Arch.from_dict(arch.to_dict()) == arch
    assert Arch.from_yaml(arch.to_yaml()) == arch
    path = tmp_path / "a.yaml"
    arch.save(path)
    assert Arch.from_yaml(path) == arch
    (tmp_path / "nested.yaml").write_text("arch:\n" + "".join(f"  {l}\n" for l in arch.to_yaml().splitlines()))
    assert Arch.from_yaml(tmp_path / "nested.yaml") == arch


def test_from_dict_defaults_and_unknown_keys():
    assert Arch.from_dict({"widths": [48, 96, 192], "depths": [4, 8, 4]}) == make()
    with pytest.raises(ArchError, match="unknown arch key"):
        Arch.from_dict({**make().to_dict(), "width_mult": 1})
    with pytest.raises(ArchError, match="missing required key"):
        Arch.from_dict({"widths": [48, 96, 192]})
    with pytest.raises(ArchError, match="mapping"):
        Arch.from_dict([1, 2, 3])  # type: ignore[arg-type]


def test_yaml_is_loaded_safely():
    with pytest.raises(ArchError):
        Arch.from_yaml("!!python/object/apply:os.system ['true']")
    with pytest.raises(ArchError, match="not valid YAML"):
        Arch.from_yaml("widths: [48, 96")


def test_key_is_stable_and_distinguishes():
    # Pinned: a key must not change between releases, or caches and studies lose their rows.
    assert make().key == "287dd6030b42"
    assert make().key == Arch.from_yaml(make().to_yaml()).key
    assert make(kernels=(3, 3, 5)).key != make().key
    assert len(make().key) == 12


def test_name_is_readable():
    assert make().name == "s24-w48.96.192-d4.8.4-l1024"
    assert make(kernels=(3, 5, 7)).name == "s24-w48.96.192-d4.8.4-l1024-k3.5.7"
    assert str(make()) == make().name


def test_references():
    assert reference("x0_5") == make()
    assert reference("shufflenet_v2_x2_0") == Arch(widths=(244, 488, 976), depths=(4, 8, 4), last=2048)
    assert reference_name(reference("x1_5")) == "x1_5"
    assert reference_name(make(last=512)) is None
    assert reference_model("x1_0").mindcv_name == "shufflenet_v2_x1_0"
    with pytest.raises(UserError, match="unknown reference model 'x3_0'"):
        reference("x3_0")
