"""Write the `half_plus_two` demo SavedModel (y = 0.5 * x + 2) for TensorFlow Serving.

Needs TensorFlow, which deployment and tests never do: run it from its own virtualenv,

    python3 -m venv /work/tfvenv && /work/tfvenv/bin/pip install tensorflow-cpu==2.21.0
    /work/tfvenv/bin/python -m tools.models.make_half_plus_two   # from the project root

Signature `serving_default`: input `x` float32 [None] -> output `y` float32 [None], so REST
`{"instances": [1.0, 2.0, 5.0]}` answers `{"predictions": [2.5, 3.0, 4.5]}`.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import tensorflow as tf  # type: ignore[import-untyped]

from config.paths import PROJECT_ROOT

VERSION = "1"


class HalfPlusTwo(tf.Module):
    def __init__(self) -> None:
        super().__init__(name="half_plus_two")
        # Variables, not constants, so the model has a variables/ folder like any real model.
        self.a = tf.Variable(0.5, dtype=tf.float32, name="a")
        self.b = tf.Variable(2.0, dtype=tf.float32, name="b")

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": self.a * x + self.b}


def build(out: Path) -> Path:
    """Save the model to `out/1` (replacing it) and return that path."""
    target = out / VERSION
    if target.exists():
        shutil.rmtree(target)  # no stale files from an earlier export
    module = HalfPlusTwo()
    tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve})
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "models" / "half_plus_two")
    args = parser.parse_args()
    target = build(args.out)

    # Check the export by loading it back the way a server would: through the signature.
    serving = tf.saved_model.load(str(target)).signatures["serving_default"]
    y = serving(x=tf.constant([1.0, 2.0, 5.0]))["y"].numpy().tolist()
    if y != [2.5, 3.0, 4.5]:
        raise SystemExit(f"reloaded model computed {y}, expected [2.5, 3.0, 4.5]")
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"wrote {target} ({size} bytes); serving_default(x=[1, 2, 5]) -> y={y}")


if __name__ == "__main__":
    main()
