"""Validation sweeps for the GAN's speed settings (never the judge's test figures).

``python -m bench.tune_gan '<json list of runs>'``: the training digits are split again (80/20,
stratified, seed 7). A validation judge, the bench's CNN trained on the 80% part only, scores
samples of GANs trained on that 80% part: class shares, mean top confidence, label agreement
(conditional), and the Fréchet distance in its feature space to the held-out 20%. Each run is
``{"conditional": bool, "epochs": int, "eval_every": int, "config": {GANConfig overrides}}``;
figures are printed every ``eval_every`` epochs with the CPU seconds of training so far.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np
import torch

from bench.digit_classifier import DigitClassifier, class_report, frechet_distance
from ml.data.digits import ImageDataset, load_images
from ml.models.config_keys import rename_legacy_keys
from ml.models.gan import GANConfig, latent_codes
from ml.training.base import TrainingOptions
from ml.training.gan import GANTrainer

VALIDATION_SEED = 7
N_SAMPLES = 1000


def validation_split(data: ImageDataset, fraction: float = 0.2) -> ImageDataset:
    """The training digits split again, stratified: fit on the first part, score on the second."""
    rng = np.random.default_rng(VALIDATION_SEED)
    held = np.zeros(len(data.train_labels), dtype=bool)
    for digit in range(10):
        members = np.flatnonzero(data.train_labels == digit)
        held[rng.choice(members, round(fraction * len(members)), replace=False)] = True
    return ImageDataset(
        f"{data.name}-validation",
        data.side,
        data.train_images[~held],
        data.train_labels[~held],
        data.train_images[held],
        data.train_labels[held],
    )


def score(
    trainer: GANTrainer, judge: DigitClassifier, val_features: np.ndarray, psi: float = 1.0
) -> dict[str, Any]:
    config = trainer.config
    generator = trainer.ema if config.ema_decay > 0 else trainer.model.generator
    z = psi * latent_codes(N_SAMPLES, config.latent_dim, seed=0)
    labels = torch.arange(N_SAMPLES) % config.n_classes if config.conditional else None
    if config.self_conditioned:
        labels = trainer.model.draw_clusters(N_SAMPLES, seed=0)
    with torch.inference_mode():
        model = trainer.model
        generator.eval()
        inputs = model._generator_input(z, labels)
        samples = generator(inputs).numpy()
    report = class_report(judge, samples)
    out: dict[str, Any] = {
        "min_share": report["min_class_share"],
        "confidence": report["mean_top_confidence"],
        "fd": frechet_distance(judge.features(samples), val_features),
    }
    if config.conditional:
        out["agreement"] = float((judge.predict(samples) == labels.numpy()).mean())  # type: ignore[union-attr]
    return out


def run(
    spec: dict[str, Any], data: ImageDataset, judge: DigitClassifier, val_features: np.ndarray
) -> None:
    overrides = rename_legacy_keys(spec.get("config", {}), GANConfig.LEGACY_KEYS)  # "hidden"
    config = GANConfig(side=data.side, conditional=spec["conditional"], **overrides)
    options = TrainingOptions(
        device="cpu", seed=spec.get("seed", 42), epochs=spec["epochs"], progress=False
    )
    trainer = GANTrainer(config, options, data.train_images, data.train_labels)
    cpu = wall = 0.0
    for epoch in range(1, spec["epochs"] + 1):
        c0, w0 = time.process_time(), time.perf_counter()
        trainer.train_epoch()
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        if epoch % spec["eval_every"] == 0 or epoch == spec["epochs"]:
            figures = score(trainer, judge, val_features)
            if spec.get("psi"):
                low = score(trainer, judge, val_features, spec["psi"])
                figures.update({f"psi_{k}": v for k, v in low.items()})
            print(
                json.dumps(
                    {
                        "run": spec,
                        "epoch": epoch,
                        "cpu_s": round(cpu, 2),
                        "wall_s": round(wall, 2),
                        **{k: round(v, 4) for k, v in figures.items()},
                    }
                ),
                flush=True,
            )


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    data = validation_split(load_images("digits"))
    judge = DigitClassifier.train(data)
    val_features = judge.features(data.test_images)
    print(
        json.dumps(
            {
                "validation_judge_accuracy": judge.test_accuracy,
                "fd_fit_digits": frechet_distance(judge.features(data.train_images), val_features),
            }
        ),
        flush=True,
    )
    for spec in json.loads(argv[0]):
        run(spec, data, judge, val_features)


if __name__ == "__main__":
    main(sys.argv[1:])
