"""Train and write the `shapes` demo image classifier (a tiny CNN) as a TF SavedModel.

Training data are synthetic pictures drawn with numpy (nothing is downloaded): one shape per
image -- circle, square, triangle -- or a stripe pattern, in random colours, sizes and places,
with noise. Needs TensorFlow, which deployment and tests never do:

    python3 -m venv /work/tfvenv && /work/tfvenv/bin/pip install tensorflow-cpu==2.21.0
    /work/tfvenv/bin/python -m tools.models.make_demo_classifier   # from the project root

Writes models/shapes/1/ (SavedModel), labels.txt and samples/<label>.png; README.md is kept by
hand. Signature `serving_default`: input `image` float32 [None, 64, 64, 3], RGB scaled to 0..1 ->
output `probabilities` float32 [None, 4] (softmax, in labels.txt order).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf  # type: ignore[import-untyped]

from config.paths import PROJECT_ROOT

VERSION = "1"
SIZE = 64
LABELS = ("circle", "square", "triangle", "stripes")
TRAIN_SEED, TEST_SEED, SAMPLE_SEED, TF_SEED = 1, 2, 3, 4
FILTERS = (8, 16, 32)


def draw(label: str, rng: np.random.Generator) -> np.ndarray:
    """One SIZE x SIZE x 3 float32 picture in 0..1 of class `label`."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    bg = rng.uniform(0.0, 1.0, 3)
    # Foreground at least 0.35 away from the background on average, so the shape is visible.
    while True:
        fg = rng.uniform(0.0, 1.0, 3)
        if np.abs(fg - bg).mean() > 0.35:
            break
    r = rng.uniform(0.15, 0.35) * SIZE  # half-width of the shape
    cx, cy = rng.uniform(r, SIZE - r, 2)
    if label == "circle":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
    elif label == "square":
        mask = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
    elif label == "triangle":
        # Upright isosceles triangle: apex at (cx, cy - r), base on y = cy + r.
        rel = (yy - (cy - r)) / (2 * r)  # 0 at the apex, 1 at the base
        mask = (rel >= 0) & (rel <= 1) & (np.abs(xx - cx) <= rel * r)
    elif label == "stripes":
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(6, 16)
        phase = xx * np.cos(angle) + yy * np.sin(angle)
        mask = np.sin(2 * np.pi * phase / period) > 0
    else:
        raise ValueError(label)
    img = np.where(mask[..., None], fg, bg) + rng.normal(0, 0.04, (SIZE, SIZE, 3))
    return np.clip(img, 0, 1).astype(np.float32)


def dataset(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(LABELS)), n_per_class)
    rng.shuffle(labels)
    images = np.stack([draw(LABELS[i], rng) for i in labels])
    return images, labels.astype(np.int32)


def train(x: np.ndarray, y: np.ndarray, epochs: int) -> tf.keras.Model:
    layers = tf.keras.layers
    model = tf.keras.Sequential([layers.Input((SIZE, SIZE, 3))])
    for f in FILTERS:
        model.add(layers.Conv2D(f, 3, padding="same", activation="relu"))
        model.add(layers.MaxPooling2D(2))
    model.add(layers.GlobalAveragePooling2D())
    model.add(layers.Dense(len(LABELS), activation="softmax"))
    model.compile(
        optimizer=tf.keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=2, shuffle=True)
    return model


class Shapes(tf.Module):
    """The trained network re-expressed with plain tf.nn ops: a small graph, no Keras at load."""

    def __init__(self, model: tf.keras.Model) -> None:
        super().__init__(name="shapes")
        convs = [la for la in model.layers if isinstance(la, tf.keras.layers.Conv2D)]
        dense = model.layers[-1]
        self.conv = [
            (tf.Variable(c.kernel.numpy(), name=f"conv{i}_w"), tf.Variable(c.bias.numpy()))
            for i, c in enumerate(convs)
        ]
        self.dense_w = tf.Variable(dense.kernel.numpy(), name="dense_w")
        self.dense_b = tf.Variable(dense.bias.numpy(), name="dense_b")

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="image")])
    def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        h = image
        for w, b in self.conv:
            h = tf.nn.relu(tf.nn.conv2d(h, w, strides=1, padding="SAME") + b)
            h = tf.nn.max_pool2d(h, ksize=2, strides=2, padding="VALID")
        h = tf.reduce_mean(h, axis=[1, 2])
        return {"probabilities": tf.nn.softmax(tf.matmul(h, self.dense_w) + self.dense_b)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "models" / "shapes")
    parser.add_argument("--train-per-class", type=int, default=1000)
    parser.add_argument("--test-per-class", type=int, default=250)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    tf.keras.utils.set_random_seed(TF_SEED)
    tf.config.experimental.enable_op_determinism()
    x_train, y_train = dataset(args.train_per_class, TRAIN_SEED)
    x_test, y_test = dataset(args.test_per_class, TEST_SEED)
    model = train(x_train, y_train, args.epochs)

    target = args.out / VERSION
    if target.exists():
        shutil.rmtree(target)  # no stale files from an earlier export
    module = Shapes(model)
    tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve})
    (args.out / "labels.txt").write_text("".join(f"{label}\n" for label in LABELS))

    # Judge the export as served: reload it and call the signature on the held-out set.
    serving = tf.saved_model.load(str(target)).signatures["serving_default"]
    probs = serving(image=tf.constant(x_test))["probabilities"].numpy()
    keras_probs = model.predict(x_test, verbose=0)
    accuracy = float((probs.argmax(axis=1) == y_test).mean())
    drift = float(np.abs(probs - keras_probs).max())
    print(f"held-out accuracy {accuracy:.4f} ({len(y_test)} images); export vs keras {drift:.1e}")

    # One PNG per class, checked after the 8-bit round trip a client's upload goes through.
    samples = args.out / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SAMPLE_SEED)
    for label in LABELS:
        pixels = np.round(draw(label, rng) * 255).astype(np.uint8)
        (samples / f"{label}.png").write_bytes(tf.io.encode_png(pixels).numpy())
        got = serving(image=tf.constant(pixels[None] / 255.0, tf.float32))["probabilities"]
        got_label = LABELS[int(np.argmax(got.numpy()[0]))]
        print(f"samples/{label}.png -> {got_label} ({float(np.max(got.numpy())):.3f})")
        if got_label != label:
            raise SystemExit(f"sample {label}.png is classified as {got_label}")

    if accuracy < 0.95:
        raise SystemExit(f"accuracy {accuracy:.4f} is below 0.95")
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {args.out} ({size} bytes in all)")


if __name__ == "__main__":
    main()
