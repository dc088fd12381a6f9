"""Settings come from TIMEBANK_* variables, and the README documents every one of them."""

from pathlib import Path

from timebank.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_is_in_the_readme_table():
    readme = README.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`TIMEBANK_{name.upper()}`" not in readme]
    assert missing == []


def test_settings_are_read_from_timebank_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("TIMEBANK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TIMEBANK_PORT", "8123")
    settings = Settings()
    assert settings.data_dir == tmp_path
    assert settings.port == 8123
