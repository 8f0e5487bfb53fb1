"""Locust load test for the TF Serving REST predict and for the preprocessing gateway.

    make loadtest STACK=dev DURATION=60s                 # targets from the stack outputs
    venv/bin/python -m locust -f tools/loadtest/locustfile.py --headless -t 60s \
        --host http://$(minikube ip):30001               # or any host, by hand, from the root

Environment (all optional; `python -m tools.loadtest.run` sets the URLs from the stack outputs):
  LOADTEST_USER         predict | gateway | both (default predict): which user classes run.
                        Tasks are also tagged `predict` / `gateway` for `--tags`.
  LOADTEST_PREDICT_URL  full REST predict URL (host and path); default host from --host,
                        path /v1/models/$LOADTEST_MODEL:predict (model half_plus_two).
  LOADTEST_GATEWAY_URL  the gateway's base URL (POST <base>/predict).
  LOADTEST_IMAGE        image file the gateway user posts (default: a demo sample or a PNG).
  LOADTEST_STEPS        step shape USERS:DURATION,... (default 5:20s,20:20s,50:20s);
                        `off` uses Locust's -u/-r instead.
  LOADTEST_SPAWN_RATE   users started per second when a step changes (default 5).
  LOADTEST_BATCH        instances per predict request (default 3).
"""

import os
import random
from pathlib import Path
from urllib.parse import urlsplit

from locust import FastHttpUser, LoadTestShape, between, tag, task

import outputs as out
from tools.loadtest.steps import DEFAULT_STEPS, parse_steps, step_at
from tools.smoke import IMAGE_TYPES, sample_image

SELECTED = os.environ.get("LOADTEST_USER", "predict").strip().lower()
if SELECTED not in ("predict", "gateway", "both"):
    raise SystemExit(f"LOADTEST_USER must be predict, gateway or both, not '{SELECTED}'")


def split_url(url: str | None) -> tuple[str | None, str | None]:
    """'http://h:8501/v1/models/m:predict' -> ('http://h:8501', '/v1/models/m:predict')."""
    if not url:
        return None, None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path or "/"


_predict_host, _predict_path = split_url(os.environ.get("LOADTEST_PREDICT_URL"))
_model = os.environ.get("LOADTEST_MODEL", "half_plus_two")


class PredictUser(FastHttpUser):
    """Posts batches of random numbers to half_plus_two and checks every answer (y = x/2 + 2)."""

    abstract = SELECTED not in ("predict", "both")
    host = _predict_host
    path = _predict_path or out.predict_path(_model)
    batch = int(os.environ.get("LOADTEST_BATCH", "3"))
    wait_time = between(0.05, 0.2)

    @tag("predict")
    @task
    def predict(self) -> None:
        xs = [round(random.uniform(-100, 100), 3) for _ in range(self.batch)]
        with self.client.post(
            self.path, json={"instances": xs}, name="predict", catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
                return
            try:
                ys = resp.json()["predictions"]
            except (ValueError, KeyError, TypeError):
                resp.failure(f"no predictions in {(resp.text or '')[:200]}")
                return
            expected = [0.5 * x + 2 for x in xs]
            if _model == "half_plus_two" and any(
                abs(float(y[0] if isinstance(y, list) else y) - e) > 1e-3
                for y, e in zip(ys, expected, strict=True)
            ):
                resp.failure(f"wrong answer {ys} for {xs}")


def _gateway_image() -> tuple[bytes, str]:
    configured = os.environ.get("LOADTEST_IMAGE")
    if configured:
        path = Path(configured)
        return path.read_bytes(), IMAGE_TYPES.get(path.suffix.lower(), "image/jpeg")
    data, content_type, _ = sample_image()
    return data, content_type


class GatewayUser(FastHttpUser):
    """Posts an image body to the gateway's /predict and expects class probabilities."""

    abstract = SELECTED not in ("gateway", "both")
    host = os.environ.get("LOADTEST_GATEWAY_URL") or None
    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.image, self.content_type = _gateway_image()

    @tag("gateway")
    @task
    def classify(self) -> None:
        with self.client.post(
            out.GATEWAY_PREDICT_PATH,
            data=self.image,  # type: ignore[arg-type]  # bytes work; the hint says str|dict
            headers={"Content-Type": self.content_type},
            name="gateway /predict",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
                return
            try:
                predictions = resp.json()["predictions"]
            except (ValueError, KeyError, TypeError):
                predictions = None
            if not predictions:
                resp.failure(f"no predictions in {(resp.text or '')[:200]}")


_steps_text = os.environ.get("LOADTEST_STEPS", DEFAULT_STEPS).strip()


class StepLoadShape(LoadTestShape):
    """Holds each step's user count for its duration, then stops (see tools/loadtest/steps.py)."""

    abstract = _steps_text.lower() == "off"
    steps = [] if abstract else parse_steps(_steps_text)
    spawn_rate = float(os.environ.get("LOADTEST_SPAWN_RATE", "5"))

    def tick(self) -> tuple[int, float] | None:
        current = step_at(self.steps, self.get_run_time())
        if current is None:
            return None
        return current[1].users, self.spawn_rate
