"""Detector options from a YAML/TOML/JSON file and `--set name.option=value` overrides."""

from __future__ import annotations

import json
import pathlib
import tomllib
from typing import Any

import yaml

from streamqc.errors import ConfigError
from streamqc.pipeline import DetectorOptions


def load_options(path: str | None, overrides: list[str] | None = None) -> DetectorOptions:
    options: DetectorOptions = {}
    if path:
        data = _read(pathlib.Path(path))
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of detector name to options")
        section = data.get("detectors", data)
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: 'detectors' must be a mapping of detector name to options")
        for name, values in section.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: options for {name!r} must be a mapping, got {values!r}")
            options[str(name)] = dict(values)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        name, dot, option = key.strip().partition(".")
        if not sep or not dot or not name or not option:
            raise ConfigError(f"--set expects detector.option=value, got {item!r}")
        options.setdefault(name, {})[option] = _scalar(value.strip())
    return options


def _read(path: pathlib.Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text) or {}
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        first = str(err).splitlines()[0]
        raise ConfigError(f"{path}: cannot parse: {first}") from None


def _scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
