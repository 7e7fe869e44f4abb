"""Every method's explanation of an adversarial image as one (H, W) relevance map.

Each method explains in its own currency; here each becomes a non-negative map over
the adversarial image's pixels, so they can be ranked against the same references:

* saliency, guided backprop, LIME (Göpfert et al.): the ``explain`` stage's explainers
  of the standard classifier's decision on x̂, as ``explain_eval`` reads them
  (positive-part l1 over channels; LIME's kept superpixels at their weights);
* the LAN attention mask (Nguyen et al.): the keep mask ``g(x̂)`` of the mask network
  trained for the standard classifier, mean over channels;
* attribute grounding (Gulshad et al. Eq. 17): the detector's boxes on x̂ grounding
  the top-k attributes selected for the adversarial class, each box weighted by its
  attribute's rank (k for the first, 1 for the last);
* InterpretGAN (Zheng et al.): ``|G(C(f_pre(x̂))) - G(C(f_pre(x)))|`` summed over
  channels at one layer, for the pooling CNN it was trained to interpret (the shared
  examples reach that model by transfer: it is not the attacked classifier);
* attack to explain (Jalwana et al.): ``|p_c|`` summed over channels, the
  distribution-level perturbation towards the adversarial class c. A class-level map:
  every example with that adversarial class gets the same one;
* two baselines that explain nothing: ``random`` (uniform scores, whose exact
  expectation every score is read against) and ``centre`` (closeness to the image
  centre: objects sit there, so a map can beat random by that alone).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from advinterp.analysis.localization import lime_maps, pixel_maps
from advinterp.attacks.attack_to_explain import A2EParams, attack_to_explain
from advinterp.comparison.scores import box_weights
from advinterp.data.dataset import TEST, TRAIN
from advinterp.data.rows import read_rows
from advinterp.detection.attribute_rcnn import AttributeFasterRCNN, detect
from advinterp.embedding.sje import normalise_features, predict_attributes
from advinterp.errors import ParamError, StoreError
from advinterp.explainers.interpretgan import InterpretGAN, explain
from advinterp.explainers.lan import attention_masks
from advinterp.explainers.lime_image import LimeSettings
from advinterp.explainers.saliency import SaliencyForm
from advinterp.explainers.suite import explain_images
from advinterp.grounding.matching import ground
from advinterp.grounding.selection import Normalize, select_adversarial
from advinterp.models.classifier import ImageClassifier
from advinterp.models.features import features_and_logits
from advinterp.models.pooling_cnn import latent_fn
from advinterp.progress import track
from advinterp.store import read_array

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SjeReadout:
    """SJE as the attribute chain fitted it on the standard classifier's features.

    Shape: W (D, A) float32; phi (C, A) float32 class embeddings; feature_norm as fitted.
    """

    W: np.ndarray
    phi: np.ndarray
    feature_norm: str


@torch.no_grad()
def sje_attributes(
    model: ImageClassifier,
    sje: SjeReadout,
    images: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """SJE's predicted attributes θ(x)W (Eq. 4's left factor) of each image.

    Shape: images (N, 3, H, W) float32 in [0, 1] -> (N, A) float64.
    """
    feats, _ = features_and_logits(model, images, batch_size, device)
    x = normalise_features(feats, sje.feature_norm)  # type: ignore[arg-type]
    return predict_attributes(x, torch.as_tensor(sje.W)).double().numpy()


def explainer_maps(
    model: ImageClassifier,
    images: np.ndarray,
    *,
    lime: LimeSettings,
    saliency: SaliencyForm,
    batch_size: int,
    device: torch.device,
    seed: int,
) -> dict[str, np.ndarray]:
    """Saliency, guided backprop, LIME and random maps of the model's class on each image.

    Seeded per example as the ``explain`` stage seeds them (:func:`explain_images`).

    Shape: images (N, 3, H, W) float32 in [0, 1] -> name -> (N, H, W) float64 >= 0.
    """
    found = explain_images(
        model,
        images,
        lime=lime,
        batch_size=batch_size,
        device=device,
        seed=seed,
        saliency=saliency,
        desc="compare: explainers",
    )
    return {**pixel_maps(found), "lime": lime_maps(found)}


def lan_maps(
    lan: nn.Module, images: np.ndarray, batch_size: int, device: torch.device
) -> np.ndarray:
    """The LAN keep mask ``g(x)`` (1 = the classifier needs this pixel), channel mean.

    Shape: images (N, C, H, W) float32 in [0, 1] -> (N, H, W) float64 in [0, 1].
    """
    return attention_masks(lan, images, batch_size, device).mean(1).astype(np.float64)


def grounding_maps(
    detector: AttributeFasterRCNN,
    images: np.ndarray,
    predicted: np.ndarray,
    phi: np.ndarray,
    true: np.ndarray,
    *,
    top_k: int,
    normalize: Normalize,
    attribute_thresh: float,
    box_thresh: float,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """Boxes grounding Eq. 17's top-k attributes of each adversarial image, as a map.

    The i-th selected attribute (best first) weighs ``k - i`` wherever the detector box
    grounding it lies; boxes of several attributes add up; no grounded attribute: zeros.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1]; predicted: (N, A) SJE attributes of
        them; phi: (C, A) class embeddings; true: (N,) int true classes.
        returns: (N, H, W) float64 >= 0.
    """
    selected, _ = select_adversarial(predicted, phi, true, top_k, normalize)
    det = detect(detector, images, batch_size, device)
    size = (int(images.shape[-2]), int(images.shape[-1]))
    k = selected.shape[1]
    out = np.zeros((len(images), *size))
    for i in range(len(images)):
        sl = det.of(i)
        box = ground(
            selected[i], det.attribute_scores[sl], det.score[sl], attribute_thresh, box_thresh
        )
        found = box >= 0
        weights = (k - np.arange(k))[found].astype(np.float64)
        out[i] = box_weights(det.xyxy[sl][box[found]], weights, size)
    return out


def interpretgan_maps(
    model: ImageClassifier,
    gan: InterpretGAN,
    clean: np.ndarray,
    adversarial: np.ndarray,
    device: torch.device,
) -> np.ndarray:
    """``|G(C(f_pre(x̂))) - G(C(f_pre(x)))|`` at the GAN's layer, summed over channels.

    Shape: clean, adversarial (N, C, H, W) float32 in [0, 1] -> (N, H, W) float64 >= 0.
    """
    latents = latent_fn(model)
    x = torch.as_tensor(clean, device=device)
    x_adv = torch.as_tensor(adversarial, device=device)
    diff = (explain(gan, latents, x_adv) - explain(gan, latents, x)).abs().sum(1)
    return diff.cpu().double().numpy()


def a2e_class_maps(
    model: ImageClassifier,
    images: Any,
    labels: np.ndarray,
    split: np.ndarray,
    classes: np.ndarray,
    *,
    params: A2EParams,
    num_samples: int,
    seed: int,
    device: torch.device,
) -> dict[int, np.ndarray]:
    """``|p_c|`` summed over channels for each class c of ``classes`` (Algorithms 1-2).

    As ``a2e_explain`` draws them: D̄ is ``num_samples`` train images of other classes,
    the seed image a test image of another class; run j of the sorted distinct classes
    uses ``torch.Generator().manual_seed(seed * 100003 + j)``.

    Shape:
        images: the dataset's (N, 3, H, W) images; labels, split: (N,) of the dataset.
        returns: class -> (H, W) float64 >= 0.
    """
    rng = np.random.default_rng(seed)
    out: dict[int, np.ndarray] = {}
    distinct = sorted({int(c) for c in classes})
    for j, c in enumerate(track(distinct, total=len(distinct), desc="compare: a2e", unit="class")):
        train_rows = np.flatnonzero((labels != c) & (split == TRAIN))
        test_rows = np.flatnonzero((labels != c) & (split == TEST))
        sample_rows = rng.choice(train_rows, min(num_samples, len(train_rows)), replace=False)
        seed_row = int(rng.choice(test_rows))
        samples = read_rows(images, sample_rows).to(device)
        seed_image = read_rows(images, np.array([seed_row]))[0].to(device)
        gen = torch.Generator().manual_seed(seed * 100003 + j)
        result = attack_to_explain(model, seed_image, samples, c, params, gen)
        out[c] = result.perturbation.abs().sum(0).cpu().double().numpy()
    return out


def centre_map(size: tuple[int, int]) -> np.ndarray:
    """The centre prior: 1 - each pixel's distance to the image centre / the half diagonal.

    Shape: returns (H, W) float64 in [0, 1] for ``size = (H, W)``, largest at the centre.
    """
    h, w = size
    y = (np.arange(h) + 0.5) / h - 0.5
    x = (np.arange(w) + 0.5) / w - 0.5
    return 1.0 - np.hypot(y[:, None], x[None, :]) / np.hypot(0.5, 0.5)


def per_example(class_maps: Mapping[int, np.ndarray], classes: np.ndarray) -> np.ndarray:
    """The class-level map of each example's class. Shape: (N,) -> (N, H, W)."""
    return np.stack([class_maps[int(c)] for c in classes])


def read_sje(group: Any, origin: str, model: str = "standard") -> SjeReadout:
    """The SJE fit of ``model`` in an ``sje`` store (W, φ and the feature norm it used)."""
    params = dict(group.attrs.get("params", {})).get("sje", {})
    if "feature_norm" not in params:
        raise StoreError(f"{origin}: no sje.feature_norm in the store's params (rerun sje)")
    return SjeReadout(
        W=read_array(group, f"{model}/W", origin),
        phi=read_array(group, "class_embeddings", origin),
        feature_norm=str(params["feature_norm"]),
    )


def interpretgan_layer(choice: str, vulnerability: Mapping[str, Any], layers: list[str]) -> str:
    """The InterpretGAN layer to map: ``choice``, or for ``auto`` the natural model's
    layer with the largest Vul_i in ``igan_vulnerability``'s metrics (Zheng et al. Eq. 5).

    Raises:
        ParamError: the layer has no InterpretGAN, or the metrics name no layer.
    """
    if choice != "auto":
        if choice not in layers:
            raise ParamError(f"compare.igan_layer={choice!r}: InterpretGANs exist for {layers}")
        return choice
    vul = {k: v.get("vul") for k, v in vulnerability.get("natural", {}).get("layers", {}).items()}
    vul = {k: float(v) for k, v in vul.items() if k in layers and v is not None}
    if not vul:
        raise ParamError(
            "compare.igan_layer=auto: igan_vulnerability's metrics give no Vul_i for the "
            f"layers {layers} (name a layer instead)"
        )
    return max(vul, key=lambda k: (vul[k], -layers.index(k)))
