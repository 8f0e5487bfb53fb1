"""`python -m gateway` as a real process, as the container runs it."""

from __future__ import annotations

import platform
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from config.paths import PROJECT_ROOT
from gateway.__main__ import main, tune_malloc
from tests.gateway.processes import gateway_env, gateway_process

KEY = "k" * 40


def test_invalid_configuration_exits_2_naming_the_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        check=False,
        cwd=PROJECT_ROOT,
        env=gateway_env(GATEWAY_IMAGE_SIZE="huge", GATEWAY_MAX_REDIRECTS="-1"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "GATEWAY_IMAGE_SIZE" in result.stderr
    assert "GATEWAY_MAX_REDIRECTS" in result.stderr


def test_a_bad_key_file_exits_2_naming_the_variable_never_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"# rotated 2026-12\n{KEY}\nshort-{KEY[:8]}\n")
    for name, value in gateway_env(GATEWAY_API_KEYS_FILE=str(keys)).items():
        monkeypatch.setenv(name, value)
    assert main() == 2  # before anything listens
    stderr = capsys.readouterr().err
    assert "GATEWAY_API_KEYS_FILE" in stderr and "line 3" in stderr
    assert KEY[:8] not in stderr


def test_serves_api_and_metrics_on_their_ports_and_stops_on_sigterm() -> None:
    env = gateway_env()
    with gateway_process(env) as proc:
        api, metrics = (
            f"http://127.0.0.1:{env['PORT']}",
            f"http://127.0.0.1:{env['GATEWAY_METRICS_PORT']}",
        )
        with urllib.request.urlopen(metrics + "/metrics", timeout=5) as r:
            assert r.status == 200 and b"gateway_requests_total" in r.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(api + "/metrics", timeout=5)
        assert missing.value.code == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_malloc_tuning_applies_on_glibc_unless_the_environment_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt thresholds are glibc's")
    assert tune_malloc() is True
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1048576")
    assert tune_malloc() is False
