"""DBN benchmark on the 8x8 digits: codes for a linear classifier, reconstruction vs PCA, samples.

For each code width d in (2, 8, 16) a DBN with layers (64, 256, 64, d) is pre-trained greedily
with CD-k and its unrolled autoencoder fine-tuned by backpropagation (default ``DBNConfig``,
fixed seed). On the held-out digits it reports:
- logistic-regression accuracy (scikit-learn, standardised inputs) on the greedy up-pass codes and
  on the fine-tuned codes, beside PCA with d components and the raw 64 pixels;
- reconstruction MSE per pixel of the fine-tuned deep autoencoder, of the pre-trained stack before
  fine-tuning, and of PCA with d components;
- per-layer CD reconstruction error at the first and last pre-training epoch; training wall time;
- a grid of DBN samples (Gibbs sampling in the top RBM, then a down-pass) in docs/dbn_samples.png,
  with the GAN benchmark's judge reading them (class shares, confidence), for information.

Run: ``python -m bench dbn`` (a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.common import markdown_table, write_result
from bench.digit_classifier import DigitClassifier, class_report, frechet_distance
from ml.data.digits import ImageDataset, load_images
from ml.inference.gan import grid_png
from ml.models.dbn import DBN, DBNConfig
from ml.training.base import TrainingOptions
from ml.training.dbn import train_dbn

log = logging.getLogger(__name__)

SEED = 42
WIDTHS = (2, 8, 16)
SAMPLE_WIDTH = 16  # the DBN whose samples are drawn
N_SAMPLES = 1000
SAMPLE_SEED = 0
DOCS = Path(__file__).resolve().parents[1] / "docs"


def linear_accuracy(train_x: np.ndarray, test_x: np.ndarray, data: ImageDataset) -> float:
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    classifier.fit(train_x, data.train_labels)
    return float(classifier.score(test_x, data.test_labels))


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a - b) ** 2).mean())


@torch.inference_mode()
def stack_reconstruction(model: DBN, x: torch.Tensor) -> np.ndarray:
    """Up-pass then down-pass through the pre-trained RBMs (no fine-tuning)."""
    return model.down_pass(model.up_pass(x)).numpy()


def main() -> None:
    device = "cpu"
    data = load_images("digits")
    train_x = torch.as_tensor(data.train_images)
    test_x = torch.as_tensor(data.test_images)
    options = TrainingOptions(device=device, seed=SEED, progress=False)
    raw_accuracy = linear_accuracy(data.train_images, data.test_images, data)

    rows, recon_rows, runs = [], [], {}
    models: dict[int, DBN] = {}
    for width in WIDTHS:
        config = DBNConfig(layers=(data.n_pixels, 256, 64, width))
        log.info("training DBN %s", config.layers)
        started = time.perf_counter()
        model, history = train_dbn(data.train_images, config, options)
        train_seconds = time.perf_counter() - started
        models[width] = model
        pca = PCA(width, random_state=SEED).fit(data.train_images)
        pca_test = pca.inverse_transform(pca.transform(data.test_images))
        with torch.inference_mode():
            up_train, up_test = model.up_pass(train_x).numpy(), model.up_pass(test_x).numpy()
            ft_train, ft_test = model.codes(train_x).numpy(), model.codes(test_x).numpy()
            reconstruction = model.reconstruct(test_x).numpy()
        run = {
            "layers": list(config.layers),
            "config": dataclasses.asdict(config),
            "train_seconds": train_seconds,
            "accuracy_dbn_up_pass": linear_accuracy(up_train, up_test, data),
            "accuracy_dbn_finetuned": linear_accuracy(ft_train, ft_test, data),
            "accuracy_pca": linear_accuracy(
                pca.transform(data.train_images), pca.transform(data.test_images), data
            ),
            "mse_dbn_finetuned": mse(reconstruction, data.test_images),
            "mse_dbn_pretrained_only": mse(stack_reconstruction(model, test_x), data.test_images),
            "mse_pca": mse(pca_test, data.test_images),
            "layer_recon_error_first_last": [
                [layer[0]["recon_error"], layer[-1]["recon_error"]] for layer in history.layers
            ],
        }
        runs[str(width)] = run
        rows.append(
            {
                "width": width,
                "DBN up-pass codes": run["accuracy_dbn_up_pass"],
                "DBN fine-tuned codes": run["accuracy_dbn_finetuned"],
                "PCA": run["accuracy_pca"],
                "raw pixels (64)": raw_accuracy,
            }
        )
        recon_rows.append(
            {
                "width": width,
                "deep autoencoder (fine-tuned)": run["mse_dbn_finetuned"],
                "DBN stack, no fine-tuning": run["mse_dbn_pretrained_only"],
                "PCA": run["mse_pca"],
                "beats PCA": run["mse_dbn_finetuned"] < run["mse_pca"],
                "train s": train_seconds,
            }
        )

    sampler = models[SAMPLE_WIDTH]
    samples = sampler.generate(N_SAMPLES, torch.Generator().manual_seed(SAMPLE_SEED)).numpy()
    DOCS.mkdir(exist_ok=True)
    (DOCS / "dbn_samples.png").write_bytes(grid_png(samples[:100], data.side, columns=10))
    judge = DigitClassifier.train(data)
    test_features = judge.features(data.test_images)
    sample_report = {
        "dbn_layers": list(sampler.config.layers),
        "gibbs_steps": sampler.config.gibbs_steps,
        **class_report(judge, samples),
        "frechet_distance": frechet_distance(judge.features(samples), test_features),
        "frechet_distance_real_training_digits": frechet_distance(
            judge.features(data.train_images), test_features
        ),
    }
    beats = {str(w): runs[str(w)]["mse_dbn_finetuned"] < runs[str(w)]["mse_pca"] for w in WIDTHS}
    payload = {
        "dataset": data.name,
        "raw_pixel_accuracy": raw_accuracy,
        "runs": runs,
        "samples": sample_report,
        "finetuned_autoencoder_beats_pca": beats,
    }
    body = "\n".join(
        [
            f"DBNs with layers (64, 256, 64, d), default `DBNConfig` (CD-{DBNConfig().cd_k}, "
            f"{DBNConfig().pretrain_epochs} epochs per layer, {DBNConfig().finetune_epochs} "
            f"fine-tuning epochs, linear code units), seed {SEED}; {len(data.train_images)} "
            f"training and {len(data.test_images)} held-out digits.",
            "",
            "## Logistic regression accuracy on held-out digits (codes of width d)",
            "",
            markdown_table(rows),
            "## Reconstruction MSE per pixel on held-out digits",
            "",
            markdown_table(recon_rows),
            "## Samples",
            "",
            f"docs/dbn_samples.png: {N_SAMPLES} samples from the d={SAMPLE_WIDTH} DBN "
            f"({sample_report['gibbs_steps']} Gibbs steps in the top RBM, then a down-pass), "
            f"seed {SAMPLE_SEED}. Read by the GAN benchmark's judge: class shares "
            f"{sample_report['class_shares']}, mean top-class confidence "
            f"{sample_report['mean_top_confidence']:.3f}, Fréchet distance to held-out digits "
            f"{sample_report['frechet_distance']:.2f} (real training digits: "
            f"{sample_report['frechet_distance_real_training_digits']:.2f}).",
            "",
        ]
    )
    write_result("dbn", payload, body, device=device, seed=SEED, title="DBN on 8x8 digits")
