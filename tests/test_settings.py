"""The settings schema: CLI options, validation, the web form's schema and a job's JSON,
all derived from the fields of Settings; the method registry."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle

import pytest
import torch

from portrait_stylize import stylize
from portrait_stylize.cli import EVERYDAY, build_parser, main
from portrait_stylize.errors import SettingsError
from portrait_stylize.methods import (
    GROUPS,
    KINDS,
    METHODS,
    SPECS,
    WORKER_SETTINGS,
    Settings,
    job_settings,
    parse_settings,
    resolve_settings,
    settings_schema,
)


def test_every_setting_is_a_cli_option_of_its_group_and_type() -> None:
    parser = build_parser()
    by_group = {
        group.title: {action.dest: action for action in group._group_actions}
        for group in parser._action_groups
    }
    for name, spec in SPECS.items():
        group = "everyday" if name in EVERYDAY else spec.group
        action = by_group[f"{group} options"][name]
        assert sum(name in actions for actions in by_group.values()) == 1
        assert action.option_strings == ["--" + name.replace("_", "-")]
        assert spec.help in action.help
        kind = KINDS[name]
        if kind.base is not bool and name != "method":
            assert action.type is kind.base and (action.nargs == "+") == kind.many
    inputs = ["c.png", "s.png", "-o", "o.png"]
    options = ["--size", "64", "--style-layer-weights", "1", "2", "--paper-exact"]
    more = ["--content-layers", "relu3_1", "relu4_2", "--lr", "0.5"]
    args = parser.parse_args([*inputs, *options, *more])
    assert args.size == 64 and args.style_layer_weights == [1.0, 2.0] and args.paper_exact
    assert args.content_layers == ["relu3_1", "relu4_2"] and args.lr == 0.5
    assert args.iterations is None and args.method == "portrait-painting"


def test_help_is_grouped_by_concern(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert text.startswith(
        "usage: portrait-stylize PHOTO PAINTING [PAINTING ...] -o OUT [options]\n"
    )
    titles = [text.index(f"\n{group} options:") for group in ("everyday", *GROUPS)]
    assert titles == sorted(titles) and text.index("\nsubcommands") < titles[1]
    everyday = text[titles[0] : titles[1]]
    assert all(flag in everyday for flag in ("--method", "--size", "--identity", "--seed", "-q"))
    faces = text[text.index("\nfaces options:") : text.index("\noutput options:")]
    assert "--face-weight" in faces and "--identity" not in faces and "--size" not in faces
    assert "--optimizer {lbfgs,adam}" in text
    assert "--resume" in text[text.index("\nrun options:") :]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"lr": 0}, "lr", "lr must be greater than 0"),
        ({"identity": 1.5}, "identity", r"identity must be in \[0, 1\]"),
        ({"min_face_fraction": 1.0}, "min_face_fraction", r"in \[0, 1\)"),
        ({"style_weight": math.nan}, "style_weight", "must be a finite number"),
        ({"size": 8}, "size", r"size must be in \[16, 16384\], not 8"),
        ({"style_blend_weights": [1, -1]}, "style_blend_weights", "at least 0"),
        ({"optimizer": "sgd"}, "optimizer", "optimizer must be one of lbfgs, adam"),
        ({"style_layers": ["relu9_9"]}, "style_layers", "relu9_9 not in vgg19-caffe"),
        ({"device": "tpu"}, "device", "device must be"),
    ],
)
def test_validation_names_the_setting(overrides, field, message) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        resolve_settings("gatys", overrides)
    assert caught.value.field == field


def test_settings_error_keeps_its_field_through_pickle() -> None:
    error = pickle.loads(pickle.dumps(SettingsError("size must be at least 16", "size")))
    assert str(error) == "size must be at least 16" and error.field == "size"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"styel_weight": 1.0}, "styel_weight", "unknown setting"),
        ({"size": True}, "size", "size must be an integer, not true"),
        ({"size": 512.0}, "size", "must be an integer"),
        ({"paper_exact": 1}, "paper_exact", "must be a boolean"),
        ({"style_weight": "1e3"}, "style_weight", "must be a number"),
        ({"style_weight": False}, "style_weight", "must be a number"),
        ({"style_layers": "relu1_1"}, "style_layers", "must be a list of strings"),
        ({"style_layer_weights": [1, True, 1, 1, 1]}, "style_layer_weights", "list of numbers"),
        ({"iterations": None}, "iterations", "must be an integer, not null"),
        ({"content_weight": math.inf}, "content_weight", "finite"),
        ({"tv_weight": -1}, "tv_weight", "tv_weight must be at least 0"),
        ({"init": "zeros"}, "init", "init must be one of"),
        ({"mask": "/etc/passwd"}, "mask", "names a file on the server"),
        ({"background": "texture:/etc/passwd"}, "background", "names a file on the server"),
        ({"device": "cuda"}, "device", "the worker's to choose"),
        ({"method": "gatys"}, "method", "method is 'crowson', not 'gatys'"),
    ],
)
def test_parse_settings_refuses_and_names_the_field(values, field, message) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        parse_settings("crowson", values)
    assert caught.value.field == field


def test_parse_settings_takes_json_values() -> None:
    values = json.loads(
        '{"size": 256, "style_weight": 1, "style_layers": ["relu1_1", "relu2_1"], '
        '"style_layer_weights": [1, 2.5], "lr": null, "mask": null, '
        '"background": "color:#102030", "method": "crowson"}'
    )
    settings = parse_settings("crowson", values)
    assert settings == resolve_settings(
        "crowson",
        {
            "size": 256,
            "style_weight": 1.0,
            "style_layers": ("relu1_1", "relu2_1"),
            "style_layer_weights": (1.0, 2.5),
            "background": "color:#102030",
        },
    )
    assert settings.style_layers == ("relu1_1", "relu2_1") and settings.lr == 0.02
    with pytest.raises(SettingsError, match="method must be one of"):
        parse_settings("picasso", {})
    with pytest.raises(SettingsError, match="must be an object"):
        parse_settings("gatys", ["size", 64])  # type: ignore[arg-type]


def test_schema_describes_every_setting_and_round_trips_through_parse() -> None:
    schema = json.loads(json.dumps(settings_schema()))
    assert list(schema["groups"]) == list(GROUPS) and list(schema["methods"]) == list(METHODS)
    fields = {entry["name"]: entry for entry in schema["fields"]}
    assert set(fields) == set(SPECS) - {"method"}
    identity = fields["identity"]
    assert identity["type"] == "number" and identity["group"] == "faces"
    assert identity["minimum"] == 0 and identity["maximum"] == 1
    assert identity["methods"] == ["portrait-stylization", "portrait-painting"]
    assert fields["lr"]["exclusiveMinimum"] == 0 and fields["lr"]["nullable"]
    assert fields["min_face_fraction"]["exclusiveMaximum"] == 1
    assert fields["optimizer"]["choices"] == ["lbfgs", "adam"]
    assert fields["style_layers"]["type"] == "array" and fields["style_layers"]["items"] == "string"
    assert fields["iterations"]["defaults"]["crowson"] == 500
    assert "instant" not in fields["iterations"]["methods"]
    assert fields["mask"]["file"] and fields["mask"]["methods"] == ["portrait-aware"]
    assert fields["background"]["file_prefix"] == "texture:"
    assert fields["device"]["worker"] and fields["device"]["methods"] == list(METHODS)
    for method in METHODS:
        job = {
            name: entry["defaults"][method]
            for name, entry in fields.items()
            if not entry["file"] and not entry["worker"]
        }
        assert parse_settings(method, job) == resolve_settings(method)


def test_job_settings_leave_out_the_worker() -> None:
    assert WORKER_SETTINGS == ("device",)
    settings = resolve_settings("crowson", {"style_layer_weights": [1, 2, 3, 4, 5]})
    job = job_settings(settings)
    assert "device" not in job and job["style_layer_weights"] == [1, 2, 3, 4, 5]
    assert job == job_settings(dataclasses.replace(settings, device="cuda:1"))


def test_the_registry_lists_every_method_by_its_name_and_known_groups() -> None:
    assert list(METHODS) == [
        "gatys",
        "gatys-plus",
        "crowson",
        "portrait-aware",
        "portrait-stylization",
        "portrait-painting",
        "instant",
    ]
    for name, method in METHODS.items():
        assert method.name == name and set(method.groups) <= set(GROUPS)
        assert (method.build is None) != (method.render is None)
    assert {spec.group for spec in SPECS.values()} == set(GROUPS)


def test_stylize_takes_resolved_settings(pair) -> None:
    content, style = pair
    settings = resolve_settings("gatys", {"size": 32, "iterations": 2, "seed": 3})
    given = stylize(content, style, settings)
    named = stylize(content, style, "gatys", size=32, iterations=2, seed=3)
    assert torch.equal(given.image, named.image)
    assert given.record["settings"] == dataclasses.asdict(settings)
    with pytest.raises(TypeError, match="iterations"):
        stylize(content, style, settings, iterations=3)
    with pytest.raises(SettingsError, match=r"size must be in \[16, 16384\]"):
        stylize(content, style, Settings(size=8))
