"""LIME for images (Ribeiro et al. 2016), fast, computing what the ``lime`` package does.

Göpfert et al. Sec. 3-4: the image is cut into superpixels, random on/off patterns of
superpixels are rendered (an "off" superpixel takes its mean colour), the classifier
labels them, and a kernel-weighted ridge regression on the on/off patterns ranks the
superpixels by their contribution to the explained class.

:class:`FastLimeImage` reproduces ``lime.lime_image.LimeImageExplainer.explain_instance``
step for step, for the same seed and ``num_samples``: the same segmentation call
(lime's own ``SegmentationAlgorithm`` wrapper), the same draws from the same
``RandomState`` in the same order (segmentation seed, then the on/off matrix), the same
mean-colour "fudged" image, the same cosine distances and kernel, and the fit by
lime's own ``LimeBase``. What changes is only how the perturbed images are classified:

* rendering is vectorised (one gather per batch instead of a Python loop per sample and
  per superpixel),
* the classifier runs on the model's device in large batches (lime: 10 at a time),
* identical on/off patterns are rendered and classified once.

The package's explanation of a label does not depend on the other labels it explains
(``top_labels``), so explaining one label gives the package's numbers for that label.
Agreement is exact up to the float noise of batched convolution (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import numpy as np
import sklearn.metrics
import torch
from lime.lime_base import LimeBase
from lime.wrappers.scikit_image import SegmentationAlgorithm
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits
from torch import nn

from advinterp.explainers.protocol import Example, SeededExplainer, ShapeKind
from advinterp.models.frozen import frozen
from advinterp.runtime import Precision, autocast, channels_last

KERNEL_WIDTH = 0.25  # lime_image.LimeImageExplainer's default
NUM_FEATURES = 100000  # explain_instance's default: keep every superpixel
PACKAGE_QUICKSHIFT = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}  # tuned for ~224 px


def lime_kernel(d: np.ndarray, kernel_width: float) -> np.ndarray:
    """lime_image's default similarity kernel: sqrt(exp(-d² / width²))."""
    return np.sqrt(np.exp(-(d**2) / kernel_width**2))


def quickshift_segmenter(
    kernel_size: float = 4, max_dist: float = 200, ratio: float = 0.2, random_seed: Any = None
) -> SegmentationAlgorithm:
    """lime's quickshift wrapper (its default segmentation, with these parameters)."""
    return SegmentationAlgorithm(
        "quickshift",
        kernel_size=kernel_size,
        max_dist=max_dist,
        ratio=ratio,
        random_seed=random_seed,
    )


def felzenszwalb_segmenter(scale: float, sigma: float, min_size: int) -> SegmentationAlgorithm:
    """lime's Felzenszwalb-Huttenlocher wrapper."""
    return SegmentationAlgorithm("felzenszwalb", scale=scale, sigma=sigma, min_size=min_size)


def fudged_image(image: np.ndarray, segments: np.ndarray, hide_color: Any = None) -> np.ndarray:
    """What an "off" superpixel shows: its mean colour (or ``hide_color``), as lime computes it.

    Shape:
        image: (H, W, 3); segments: (H, W) int; returns (H, W, 3) of ``image``'s dtype.
    """
    fudged = image.copy()
    if hide_color is not None:
        fudged[:] = hide_color
        return fudged
    # lime loops over segments with a boolean mask each (O(K·H·W)); a stable sort visits
    # every segment's pixels in the same raster order, so np.mean sums the same values
    # in the same order and the means are bit-identical.
    flat_seg = segments.reshape(-1)
    order = np.argsort(flat_seg, kind="stable")
    ids, starts = np.unique(flat_seg[order], return_index=True)
    bounds = np.append(starts, len(order))
    flat_img = image.reshape(-1, image.shape[-1])
    flat_out = fudged.reshape(-1, image.shape[-1])
    for k in range(len(ids)):
        idx = order[bounds[k] : bounds[k + 1]]
        vals = flat_img[idx]
        flat_out[idx] = (np.mean(vals[:, 0]), np.mean(vals[:, 1]), np.mean(vals[:, 2]))
    return fudged


def lime_classifier_fn(model: nn.Module, batch_size: int = 256):
    """The ``classifier_fn`` the ``lime`` package needs for ``model`` (tests and bench).

    Maps an (N, H, W, 3) numpy batch in [0, 1] to (N, C) float32 softmax probabilities,
    as :class:`FastLimeImage` computes them, so both explain the same function.
    """
    device = _model_device(model)

    def classify(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()
        out = []
        with frozen(model), torch.inference_mode():
            for s in range(0, len(x), batch_size):
                out.append(model(x[s : s + batch_size].to(device)).softmax(1).float().cpu())
        return torch.cat(out).numpy()

    return classify


@dataclass(frozen=True)
class LimeExplanation:
    """One label's LIME explanation (lime's ``local_exp[label]`` and friends).

    Shape:
        segments: (H, W) int superpixel ids 0..K-1.
        ranked: (K, 2) float64 rows (superpixel id, weight), sorted by |weight| descending
            (lime's order).
        data: (num_samples, K) int64 on/off patterns; row 0 is all ones.
        probs: (num_samples,) float32 classifier probability of ``label`` per pattern.
    """

    label: int
    segments: np.ndarray
    ranked: np.ndarray
    intercept: float
    score: float
    local_pred: float
    data: np.ndarray = field(repr=False)
    probs: np.ndarray = field(repr=False)
    num_evaluated: int = 0

    @property
    def weights(self) -> np.ndarray:
        """(K,) float64 weight of each superpixel, indexed by superpixel id."""
        w = np.zeros(int(self.ranked[:, 0].max()) + 1 if len(self.ranked) else 0)
        w[self.ranked[:, 0].astype(np.int64)] = self.ranked[:, 1]
        return w

    def top_positive(self, n: int) -> np.ndarray:
        """Ids of the (at most) ``n`` best positively contributing superpixels, best first.

        Equals the superpixels of lime's ``get_image_and_mask(label, positive_only=True,
        num_features=n)``. Shape: (m,) int64, m <= n.
        """
        pos = self.ranked[self.ranked[:, 1] > 0]
        return pos[:n, 0].astype(np.int64)


class FastLimeImage:
    """``LimeImageExplainer`` for a torch classifier, batched on its device.

    Args:
        model: maps (N, 3, H, W) images in [0, 1] to logits; LIME explains softmax
            probabilities, as a ``classifier_fn`` built from the model would give lime.
        random_state: int seed or ``RandomState``, as lime's ``random_state``; successive
            :meth:`explain` calls continue the same stream, as lime's do.
        batch_size: perturbed images per forward pass.
        precision: the perturbed images' forwards (``base.precision``): ``fp32``, or
            ``bf16`` autocast with channels_last (inference only, like the features
            pass; probabilities are float32 either way).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        kernel_width: float = KERNEL_WIDTH,
        random_state: int | np.random.RandomState | None = None,
        feature_selection: str = "auto",
        batch_size: int = 256,
        device: torch.device | str | None = None,
        precision: Precision = "fp32",
    ):
        self.model = model
        self.precision = precision
        self.random_state = check_random_state(random_state)
        self.feature_selection = feature_selection
        self.base = LimeBase(
            partial(lime_kernel, kernel_width=float(kernel_width)),
            random_state=self.random_state,
        )
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else _model_device(model)

    def explain(
        self,
        image: np.ndarray,
        label: int,
        *,
        num_samples: int = 1000,
        segmentation_fn: Any = None,
        hide_color: Any = None,
        random_seed: int | None = None,
        num_features: int = NUM_FEATURES,
        distance_metric: str = "cosine",
    ) -> LimeExplanation:
        """Explain ``label`` for ``image`` exactly as ``explain_instance`` would.

        Same defaults as ``explain_instance``: quickshift(4, 200, 0.2) segmentation, a
        segmentation seed drawn from the random state when ``random_seed`` is None.

        Shape:
            image: (H, W, 3) float in [0, 1] (lime's layout).
        """
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
        if random_seed is None:
            random_seed = self.random_state.randint(0, high=1000)
        if segmentation_fn is None:
            segmentation_fn = quickshift_segmenter(**PACKAGE_QUICKSHIFT, random_seed=random_seed)
        segments = segmentation_fn(image)
        if segments.min() < 0:
            raise ValueError("segmentation produced negative superpixel ids")
        fudged = fudged_image(image, segments, hide_color)

        n_features = np.unique(segments).shape[0]
        data = self.random_state.randint(0, 2, num_samples * n_features).reshape(
            (num_samples, n_features)
        )
        data[0, :] = 1
        patterns, inverse = np.unique(data, axis=0, return_inverse=True)
        probs = self._classify(image, fudged, segments, patterns)[inverse.reshape(-1)]

        # The fit is a K x K solve (K ~ 50): multi-threaded BLAS only adds thread
        # start-up and, next to torch's threads, contention (measured 100x slower).
        with threadpool_limits(limits=1, user_api="blas"):
            distances = sklearn.metrics.pairwise_distances(
                data, data[0].reshape(1, -1), metric=distance_metric
            ).ravel()
            intercept, ranked, score, local_pred = self.base.explain_instance_with_data(
                data,
                probs,
                distances,
                label,
                num_features,
                model_regressor=None,
                feature_selection=self.feature_selection,
            )
        return LimeExplanation(
            label=int(label),
            segments=segments,
            ranked=np.array([(f, w) for f, w in ranked], dtype=np.float64).reshape(-1, 2),
            intercept=float(intercept),
            score=float(score),
            local_pred=float(np.asarray(local_pred).ravel()[0]),
            data=data,
            probs=probs[:, label],
            num_evaluated=len(patterns),
        )

    def _classify(
        self, image: np.ndarray, fudged: np.ndarray, segments: np.ndarray, patterns: np.ndarray
    ) -> np.ndarray:
        """Softmax probabilities of every distinct on/off pattern, rendered on the device.

        A pixel is "off" when its superpixel id s < K has pattern[s] == 0 (lime indexes
        superpixels by id, so ids >= K — only from non-contiguous labellings — stay on).

        Shape:
            patterns: (U, K) {0, 1}; returns (U, C) float32.
        """
        dev = self.device
        K = patterns.shape[1]
        n_ids = int(segments.max()) + 1
        on_np = np.ones((len(patterns), max(n_ids, K)), dtype=bool)
        on_np[:, :K] = patterns.astype(bool)
        on = torch.from_numpy(on_np[:, :n_ids]).to(dev)
        seg = torch.from_numpy(segments.reshape(-1).astype(np.int64)).to(dev)
        h, w = segments.shape
        # float32 once, not per batch: lime hands float64 images around, and rendering
        # 256 float64 images and converting them cost ~15% of the forward here.
        img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).to(dev).float()
        fud = torch.from_numpy(np.ascontiguousarray(fudged.transpose(2, 0, 1))).to(dev).float()
        out = []
        bf16 = self.precision == "bf16"
        # channels_last outside inference mode: its weights must stay normal tensors,
        # which frozen() can hand back with requires_grad restored.
        with (
            frozen(self.model),
            channels_last(self.model, bf16),
            torch.inference_mode(),
            autocast(dev, self.precision),
        ):
            for s in range(0, len(patterns), self.batch_size):
                keep = on[s : s + self.batch_size][:, seg].view(-1, 1, h, w)
                x = torch.where(keep, img, fud)
                # softmax in float32 (a no-op cast in fp32: bitwise as before)
                out.append(self.model(x).float().softmax(1).cpu())
        return torch.cat(out).numpy()


@dataclass(frozen=True)
class LimeSettings:
    """How LIME runs: its segmentation callable, sample count, batch and kept superpixels."""

    segmentation_fn: Callable[[np.ndarray], np.ndarray]
    num_samples: int = 1000
    batch_size: int = 256
    top: int = 20
    precision: Precision = "fp32"  # of the perturbed images' forwards (base.precision)


def lime_seed(seed: int, image_set: int, i: int) -> int:
    """The int ``random_state`` of LIME for example ``i`` of a set (also usable with ``lime``)."""
    return int(np.random.SeedSequence([seed, image_set, i]).generate_state(1)[0])


@dataclass(frozen=True)
class LimeExplainer(SeededExplainer):
    """:class:`FastLimeImage` as an :class:`~advinterp.explainers.protocol.Explainer`.

    Example i is explained with ``random_state = lime_seed(seed, image_set, start + i)``
    (``where``), which the ``lime`` package reproduces; the best ``settings.top``
    positive superpixels are kept.

    Returns (from ``explain``):
        ``lime_segments`` (N, H, W) int32; ``lime_top`` (N, T) int32 positive
        superpixel ids, best first, -1 padded; ``lime_weights`` (N, T) float32 their
        weights; ``lime_num_segments``, ``lime_evaluated`` (N,) int32; ``lime_score``
        (N,) float32 (R² of the surrogate); ``lime_seed`` (N,) uint32.
    """

    name: ClassVar[str] = "lime"
    outputs: ClassVar[Mapping[str, tuple[ShapeKind, str]]] = {
        "lime_segments": ("map", "int32"),
        "lime_top": ("rank", "int32"),
        "lime_weights": ("rank", "float32"),
        "lime_num_segments": ("one", "int32"),
        "lime_evaluated": ("one", "int32"),
        "lime_score": ("one", "float32"),
        "lime_seed": ("one", "uint32"),
    }
    progress: ClassVar[str | None] = "LIME"
    settings: LimeSettings

    @property
    def rank(self) -> int:
        """T = ``settings.top`` kept superpixels."""
        return self.settings.top

    def explain_example(self, example: Example) -> dict[str, Any]:
        """LIME of one image for its target: its row of every output."""
        top = self.settings.top
        seed = lime_seed(example.seed, example.image_set, example.position)
        explainer = FastLimeImage(
            example.model,
            random_state=seed,
            batch_size=self.settings.batch_size,
            device=example.device,
            precision=self.settings.precision,
        )
        hwc = np.ascontiguousarray(example.image.transpose(1, 2, 0))
        exp = explainer.explain(
            hwc,
            example.target,
            num_samples=self.settings.num_samples,
            segmentation_fn=self.settings.segmentation_fn,
        )
        ids = exp.top_positive(top)
        lime_top = np.full(top, -1, np.int32)
        lime_top[: len(ids)] = ids
        weights = np.zeros(top, np.float32)
        weights[: len(ids)] = exp.weights[ids]
        return {
            "lime_segments": exp.segments,
            "lime_top": lime_top,
            "lime_weights": weights,
            "lime_num_segments": len(np.unique(exp.segments)),
            "lime_evaluated": exp.num_evaluated,
            "lime_score": exp.score,
            "lime_seed": seed,
        }


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
