"""The sequencer's settings are checked whole at start: a missing or malformed setting, from the
environment or a flag, ends `python -m sequencer.main` at once with exit status 2 and one line
naming the setting (its flag and its environment variable), before anything is wired."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sequencer.config import SequencerSettings, SettingsError, load_settings
from sequencer.main import FLAGS, argument_parser, settings_from

KEY = "0x" + "11" * 32


def run_main(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ROLLUP_SEQ_")}
    return subprocess.run(
        [sys.executable, "-m", "sequencer.main", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            [],
            {"ROLLUP_SEQ_PORT": "eighty"},
            "rollup sequencer: invalid settings: port (--port or ROLLUP_SEQ_PORT): Input should be a valid "
            "integer, unable to parse string as an integer",
        ),
        (
            ["--batch-max-txs", "0"],
            {},
            "rollup sequencer: invalid settings: batch_max_txs (--batch-max-txs or "
            "ROLLUP_SEQ_BATCH_MAX_TXS): Input should be greater than or equal to 1",
        ),
        (
            ["--private-key", ""],
            {"ROLLUP_SEQ_MAX_BODY_BYTES": "12"},
            "rollup sequencer: invalid settings: private_key (--private-key or ROLLUP_SEQ_PRIVATE_KEY): "
            "must be 32 bytes of hex (64 hex digits, 0x optional); max_body_bytes "
            "(ROLLUP_SEQ_MAX_BODY_BYTES): Input should be greater than or equal to 4096",
        ),
    ],
    ids=["malformed env", "malformed flag", "two at once"],
)
def test_main__malformed_setting__exit_2_with_one_line_naming_it(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    deployment = tmp_path / "deployment.json"
    deployment.write_text("{}")  # never read: the settings are refused first
    base = {"ROLLUP_SEQ_DEPLOYMENT": str(deployment), "ROLLUP_SEQ_PRIVATE_KEY": KEY}
    done = run_main(args, {**base, **env}, tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", expected + "\n")
    assert KEY[2:] not in done.stderr


def test_main__missing_settings__exit_2_naming_each(tmp_path: Path) -> None:
    done = run_main([], {}, tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "rollup sequencer: invalid settings: deployment (--deployment or ROLLUP_SEQ_DEPLOYMENT): no file "
        "at var/deployment.json; private_key (--private-key or ROLLUP_SEQ_PRIVATE_KEY): required\n"
    )


def test_settings_from__flags_and_environment__the_flags_win_and_values_are_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = tmp_path / "d.json"
    deployment.write_text("{}")
    monkeypatch.setenv("ROLLUP_SEQ_PORT", "9000")
    monkeypatch.setenv("ROLLUP_SEQ_PRIVATE_KEY", KEY)
    monkeypatch.setenv("ROLLUP_SEQ_FSYNC", "true")
    args = argument_parser().parse_args(["--deployment", str(deployment), "--port", "8611", "--db", "x.db"])
    settings = settings_from(args)
    assert (settings.port, settings.db_path, settings.fsync, settings.deployment) == (
        8611,
        "x.db",
        True,
        deployment,
    )
    assert KEY not in repr(settings)


def test_load_settings__every_flag_names_a_setting_and_errors_name_the_flag(tmp_path: Path) -> None:
    assert set(FLAGS) <= set(SequencerSettings.model_fields)
    deployment = tmp_path / "d.json"
    deployment.write_text("{}")
    with pytest.raises(SettingsError) as refused:
        load_settings({"l1_url": "ftp://x", "private_key": KEY, "deployment": str(deployment)}, FLAGS)
    assert str(refused.value) == (
        "invalid settings: l1_url (--l1-url or ROLLUP_SEQ_L1_URL): must be an http:// or https:// URL"
    )
