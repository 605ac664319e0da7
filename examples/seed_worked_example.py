"""The seed write-up, worked end to end with lossaudit.

Reproduces the write-up's situation with the bundled seed loss: a tiny Keras detector trained
briefly on synthetic one-class "car" scenes (13 x 13 grid, 5 anchors, one car per image), its
loss components logged to TensorBoard the working way (``lossaudit.keras.component_metrics``
and the stock TensorBoard callback), then:

1. ``lossaudit tensorboard`` reads the logs back and says which components respond;
2. ``lossaudit report`` audits the loss itself on the same grid;
3. the same model is trained with a fixed loss and the logs are diagnosed again.

Run from the repository root (about 3 minutes on 2 CPU cores)::

    python examples/seed_worked_example.py [LOGDIR]

Writes TensorBoard logs under LOGDIR (default: a temporary directory) and prints what
lossaudit says at each step.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

GRID, ANCHORS, CLASSES, PIXELS = 13, 5, 1, 8
IMAGES, EPOCHS = 64, 30


def car_scenes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic images with one "car" each (a bright box) and their canonical truth."""
    from lossaudit.spec import GridSpec, Obj, Scene

    rng = np.random.default_rng(seed)
    size = GRID * PIXELS
    images = rng.normal(0.0, 0.1, (n, size, size, 3)).astype("float32")
    truth = np.zeros((n, GRID, GRID, ANCHORS, 5 + CLASSES), dtype="float32")
    spec = GridSpec(batch=1, H=GRID, W=GRID, anchors=ANCHORS, classes=CLASSES)
    for k in range(n):
        w, h = rng.uniform(0.1, 0.3), rng.uniform(0.08, 0.2)
        cx, cy = rng.uniform(0.15, 0.85, size=2)
        i, j = int(cy * GRID), int(cx * GRID)
        # The responsible anchor follows the box's width, as anchor matching by shape would.
        a = min(int((w - 0.1) / 0.2 * ANCHORS), ANCHORS - 1)
        obj = Obj(0, i, j, a, cx * GRID - j, cy * GRID - i, w, h, 0)
        truth[k] = Scene(spec, (obj,)).truth()[0]
        x0, x1 = int((cx - w / 2) * size), int((cx + w / 2) * size)
        y0, y1 = int((cy - h / 2) * size), int((cy + h / 2) * size)
        images[k, y0:y1, x0:x1, :] += (0.9, 0.2, 0.2)
    return images, truth


def detector():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((GRID * PIXELS, GRID * PIXELS, 3)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(ANCHORS * (5 + CLASSES), 1),
            keras.layers.Reshape((GRID, GRID, ANCHORS, 5 + CLASSES)),
        ]
    )


def train(loss, logdir: Path) -> dict[str, list[float]]:
    """Train briefly, logging every component as its own TensorBoard curve."""
    import keras

    import lossaudit.keras

    images, truth = car_scenes(IMAGES)
    model = detector()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=loss,
        metrics=lossaudit.keras.component_metrics(loss, shape=model.output_shape[1:]),
    )
    history = model.fit(
        images,
        truth,
        batch_size=16,
        epochs=EPOCHS,
        verbose=0,
        callbacks=[keras.callbacks.TensorBoard(str(logdir))],
    )
    return history.history


def lossaudit_cli(*args: str) -> None:
    print(f"\n$ lossaudit {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "lossaudit", *args], check=False)


def main() -> None:
    from lossaudit.adapter import import_tensorflow

    import_tensorflow()  # without TensorFlow's start-up chatter
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="seed-logs-"))
    from lossaudit.examples.seed import seed_loss

    print(f"1. Train the seed loss for {EPOCHS} epochs; logs in {root / 'seed'}")
    history = train(seed_loss, root / "seed")
    for name in ("coordinates", "objects", "no_objects", "classification", "confidence"):
        values = history[name]
        print(f"   {name:15s} epoch 1: {values[0]:10.4f}   epoch {EPOCHS}: {values[-1]:10.4f}")

    print("\n2. What the logs say")
    lossaudit_cli("tensorboard", str(root / "seed"))

    print("\n3. What the loss itself says, on the same grid")
    grid = ["--grid", str(GRID), "--anchors", str(ANCHORS), "--classes", str(CLASSES)]
    lossaudit_cli("report", *grid, "--profile", "ci")

    from lossaudit.targets import load_target

    fixed = Path(__file__).resolve().parent / "seed_fixed.py"
    fixed_loss, _ = load_target(f"{fixed}:fixed_loss")

    print(f"\n4. Train the fixed loss (examples/seed_fixed.py); logs in {root / 'fixed'}")
    history = train(fixed_loss, root / "fixed")
    for name in ("coordinates", "objects", "no_objects", "classification"):
        values = history[name]
        print(f"   {name:15s} epoch 1: {values[0]:10.4f}   epoch {EPOCHS}: {values[-1]:10.4f}")
    lossaudit_cli("tensorboard", str(root / "fixed"))
    lossaudit_cli("report", f"{fixed}:fixed_loss", *grid, "--cls", "sigmoid", "--profile", "ci")


if __name__ == "__main__":
    main()
