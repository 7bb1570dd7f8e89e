"""docs/configuration.md is generated from the settings classes and must match them."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tools import config_reference
from tools.config_reference import COMPONENTS, OUTPUT, MissingDescriptionError, render_component

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("decision_service", "gateway_client", "trainer", "tools", "routeiq")


def test_configuration_reference_is_up_to_date() -> None:
    committed = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    assert committed == config_reference.render(), (
        "docs/configuration.md is out of date with the settings classes "
        "(a field was added, removed or its description, type or default changed): "
        "run `make docs` and commit docs/configuration.md"
    )


def test_every_settings_class_is_in_the_reference() -> None:
    listed = {c.target.replace(":", ".") for c in COMPONENTS}
    found = set()
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and any(
                    (isinstance(b, ast.Name) and b.id == "BaseSettings")
                    or (isinstance(b, ast.Attribute) and b.attr == "BaseSettings")
                    for b in node.bases
                ):
                    found.add(f"{module}.{node.name}")
    assert found <= listed, (
        f"settings classes missing from tools.config_reference.COMPONENTS: {found - listed}; "
        "add them there and run `make docs`"
    )


def test_a_field_without_description_fails_the_generator() -> None:
    class Incomplete(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="ROUTEIQ_TEST_")

        documented: int = Field(default=1, description="Has one.")
        undocumented: int = 2

    with pytest.raises(MissingDescriptionError, match="undocumented"):
        render_component("Incomplete", Incomplete)


def test_rows_show_env_name_type_default_and_description() -> None:
    class Sample(BaseSettings):
        """Sample settings."""

        model_config = SettingsConfigDict(env_prefix="ROUTEIQ_SAMPLE_")

        port: int = Field(default=50051, ge=0, le=65535, description="The port | really.")
        mode: Literal["a", "b"] = Field(default="a", description="A mode.")
        path: Path | None = Field(default=None, description="A file.")
        names: list[str] = Field(default_factory=list, description="Names.")
        required: str = Field(description="Must be set.")

    text = render_component("Sample", Sample)
    assert "Sample settings." in text
    port_row = (
        "| `ROUTEIQ_SAMPLE_PORT` | integer, >= 0, <= 65535 | `50051` | The port \\| really. |"
    )
    assert port_row in text
    assert "| `ROUTEIQ_SAMPLE_MODE` | one of `a`, `b` | `a` | A mode. |" in text
    assert "| `ROUTEIQ_SAMPLE_PATH` | path, optional | unset | A file. |" in text
    assert "| `ROUTEIQ_SAMPLE_NAMES` | JSON list of strings | `[]` | Names. |" in text
    assert "| `ROUTEIQ_SAMPLE_REQUIRED` | string | required | Must be set. |" in text


def test_check_mode_reports_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "configuration.md"
    assert config_reference.main(["--out", str(out)]) == 0
    assert config_reference.main(["--out", str(out), "--check"]) == 0
    out.write_text(out.read_text(encoding="utf-8") + "hand edit\n", encoding="utf-8")
    assert config_reference.main(["--out", str(out), "--check"]) == 1
    assert "make docs" in capsys.readouterr().err
