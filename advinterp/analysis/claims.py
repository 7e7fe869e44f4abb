"""The papers' headline claims, each with the paper's own number and how our metrics test it.

The numbers quoted here are the papers' (their datasets and models, not ours); the
``margin`` of each claim is the difference the paper claims, read from our metrics
seed by seed (:mod:`advinterp.analysis.findings` turns it into a verdict). Where the
paper reports another dataset than the profile we test on, ``paper_number`` says which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from advinterp.analysis.findings import Claim, PerSeed, difference, each, within
from advinterp.analysis.seed_tables import SeedTable
from advinterp.analysis.spread import spread
from advinterp.errors import StoreError
from advinterp.markdown import lookup

Metrics = Mapping[str, Any]

# Layers Zheng et al. find vulnerable (they change the latent format or max-pool: Sec. 5.2)
# and the others, on their MNIST SmallCNN; ours has the same nine layers.
LOSSY_LAYERS = ("conv1", "conv2", "conv4", "fc1")
OTHER_LAYERS = ("conv3", "fc2", "fc3")


def _rank(method: str) -> PerSeed:
    return each(lambda m: m["mean_rank"][method]["jaccard"])


def _best_other_rank(method: str) -> PerSeed:
    others = ("saliency", "guided_backprop", "lime")
    return each(lambda m: min(m["mean_rank"][o]["jaccard"] for o in others if o != method))


def _vul(layers: Sequence[str]) -> PerSeed:
    return each(lambda m: sum(m["natural"]["layers"][k]["vul"] for k in layers) / len(layers))


def _balanced(attack: str) -> PerSeed:
    def value(m: Metrics) -> float:
        row = m["table2_direct"][attack]
        return (row["true_positive"] + row["true_negative"]) / 2

    return each(value)


def _softmax_reading(key: str, mode: str = "untargeted") -> Any:
    """Fig. 5c with the wrong class named by the softmax: the reading that does not hold by
    construction (with SJE naming it, every fooled image is closer on all attributes)."""
    return lambda m: m["closer_to_wrong_class_by_reading"]["softmax_names_wrong_class"][key][mode]


def _const(value: float) -> PerSeed:
    return lambda runs: [value] * len(runs)


def _acc(mode: str, eps: str, key: str) -> PerSeed:
    return each(lambda m: m[mode][f"eps_{eps}"][key])


def _at_gain(classifier: str) -> PerSeed:
    """Accuracy on untargeted eps 0.01 images with adversarial training minus without."""
    return difference(
        _acc("untargeted", "0.01", f"{classifier}_adv_at"),
        _acc("untargeted", "0.01", f"{classifier}_adv"),
    )


def _a2e(measure: str, perturbation_of: str, judge: str) -> PerSeed:
    return within(lambda m: m["headline"][measure][perturbation_of][judge])


def _a2e_above(
    measure: str, perturbation_of: str, judge: str, level: Callable[[Metrics], float]
) -> PerSeed:
    """:func:`_a2e`'s per-seed values minus one level of the run (chance, the clean rate)."""
    values = _a2e(measure, perturbation_of, judge)
    return lambda runs: [v - float(level(runs[0])) for v in values(runs)]


CLAIMS: tuple[Claim, ...] = (
    Claim(
        paper="Gulshad et al.",
        claim="SJE is more accurate than softmax under untargeted IFGSM (Fig. 4, eps 0.01)",
        paper_number="CUB: about +30 points at eps 0.025 (read off Fig. 4)",
        source="accuracy",
        profile="birds",
        ours=_acc("untargeted", "0.01", "sje_adv"),
        margin=difference(
            _acc("untargeted", "0.01", "sje_adv"), _acc("untargeted", "0.01", "softmax_adv")
        ),
        measures="SJE - softmax accuracy on adversarial images",
    ),
    Claim(
        paper="Gulshad et al.",
        claim="adversarial images' attributes lie closer to the wrong class than to the true "
        "one (Fig. 5c; the wrong class named by the softmax, top 20 % changed attributes)",
        paper_number="'most images' (histograms, no number)",
        source="distances",
        profile="birds",
        ours=each(_softmax_reading("top_changed")),
        margin=difference(each(_softmax_reading("top_changed")), _const(0.5)),
        measures="fraction closer to the wrong class - 0.5",
    ),
    Claim(
        paper="Gulshad et al.",
        claim="adversarial training recovers SJE's accuracy under attack (Fig. 4, "
        "untargeted, eps 0.01)",
        paper_number="AwA: about 5 % -> 83 % at eps 0.12",
        source="accuracy",
        profile="birds",
        ours=_acc("untargeted", "0.01", "sje_adv_at"),
        margin=difference(
            _acc("untargeted", "0.01", "sje_adv_at"), _acc("untargeted", "0.01", "sje_adv")
        ),
        measures="SJE accuracy with - without adversarial training",
    ),
    Claim(
        paper="Gulshad et al.",
        claim="with adversarial training SJE gains more than softmax (Fig. 4, untargeted, "
        "eps 0.01)",
        paper_number="'improves significantly as compared to softmax' (no number)",
        source="accuracy",
        profile="birds",
        ours=_at_gain("sje"),
        margin=difference(_at_gain("sje"), _at_gain("softmax")),
        measures="SJE's gain - softmax's gain",
    ),
    Claim(
        paper="Jalwana et al.",
        claim="the class perturbation moves held-out images into its class more often "
        "than they are there clean (Sec. 5.1, eta 10 at 224 px, its own model)",
        paper_number="stops at ℘ >= 0.8 on D̄ (ImageNet); held-out: qualitative",
        source="a2e_explain",
        profile="birds",
        ours=_a2e("heldout_fooling_rate", "standard", "standard"),
        margin=_a2e_above(
            "heldout_fooling_rate",
            "standard",
            "standard",
            lambda m: m["headline"]["clean_heldout_target_rate"]["standard"],
        ),
        measures="fooling rate - clean rate of the target class",
    ),
    Claim(
        paper="Jalwana et al.",
        claim="the perturbation alone is seen as its class (class-revealing, Figs. 3-5)",
        paper_number="qualitative (Figs. 3-5)",
        source="a2e_explain",
        profile="birds",
        ours=_a2e("perturbation_classified_as_target", "standard", "standard"),
        margin=_a2e_above(
            "perturbation_classified_as_target", "standard", "standard", lambda m: m["chance"]
        ),
        measures="rate - chance",
    ),
    Claim(
        paper="Jalwana et al.",
        claim="another model also sees the perturbation as its class (Sec. 5.1, "
        "'high confidence of multiple models')",
        paper_number="qualitative (no number)",
        source="a2e_explain",
        profile="birds",
        ours=_a2e("perturbation_classified_as_target", "standard", "second"),
        margin=_a2e_above(
            "perturbation_classified_as_target", "standard", "second", lambda m: m["chance"]
        ),
        measures="rate on the second model - chance",
    ),
    Claim(
        paper="Göpfert et al.",
        claim="LIME finds the attacked region best (Table 1, mean rank, Jaccard)",
        paper_number="LIME 1.36, guided backprop 2.06, saliency 2.58",
        source="explain_eval",
        profile="birds",
        ours=_rank("lime"),
        margin=difference(_best_other_rank("lime"), _rank("lime")),
        measures="best other mean rank - LIME's",
    ),
    Claim(
        paper="Göpfert et al.",
        claim="guided backprop ranks above saliency (Table 1, Jaccard)",
        paper_number="2.06 vs 2.58",
        source="explain_eval",
        profile="birds",
        ours=_rank("guided_backprop"),
        margin=difference(_rank("saliency"), _rank("guided_backprop")),
        measures="saliency's mean rank - guided backprop's",
    ),
    Claim(
        paper="Nguyen et al.",
        claim="attention masks keep their class under FGSM (Table 1)",
        paper_number="0.863 (CIFAR-10)",
        source="digits_lan_detect",
        profile="digits",
        ours=each(lambda m: m["table1_mask_class_kept"]["direct/fgsm"]),
        margin=difference(each(lambda m: m["table1_mask_class_kept"]["direct/fgsm"]), _const(0.85)),
        measures="kept fraction - 0.85 (the paper: 'over 85%')",
    ),
    Claim(
        paper="Nguyen et al.",
        claim="f1/f2 disagreement detects FGSM (Table 2, balanced accuracy of TP and TN)",
        paper_number="TP 0.878, TN 0.614 -> 0.746 (CIFAR-10)",
        source="digits_lan_detect",
        profile="digits",
        ours=_balanced("fgsm"),
        margin=difference(_balanced("fgsm"), _const(0.5)),
        measures="balanced accuracy - 0.5 (chance)",
    ),
    Claim(
        paper="Zheng et al.",
        claim="layers that lose information (conv1, conv2, conv4, fc1) are the vulnerable "
        "ones (Table 1, natural model, mean Vul_i)",
        paper_number="22.8% vs 1.8% (MNIST)",
        source="digits_igan_vulnerability",
        profile="digits",
        ours=_vul(LOSSY_LAYERS),
        margin=difference(_vul(LOSSY_LAYERS), _vul(OTHER_LAYERS)),
        measures="mean Vul_i of those layers - of the others",
    ),
    Claim(
        paper="Zheng et al.",
        claim="conv1 is the most vulnerable layer (Table 1, natural model)",
        paper_number="Vul_conv1 47.4%, next 26.3% (MNIST)",
        source="digits_igan_vulnerability",
        profile="digits",
        ours=_vul(("conv1",)),
        margin=each(
            lambda m: (
                m["natural"]["layers"]["conv1"]["vul"]
                - max(v["vul"] for k, v in m["natural"]["layers"].items() if k != "conv1")
            )
        ),
        measures="Vul_conv1 - the largest other Vul_i",
    ),
    Claim(
        paper="Zheng et al.",
        claim="average pooling is more robust than max pooling (Table 2, PGD-40 accuracy)",
        paper_number="91.56% vs 89.33% (MNIST, eps 0.3)",
        source="digits_pooling_study",
        profile="digits",
        ours=each(lambda m: m["avg"]["pgd40"]),
        margin=each(lambda m: m["avg_minus_max"]["pgd40"]),
        measures="accuracy avg - max",
    ),
)

LAN_ATTACKS = (("FGSM", "fgsm", "0.878", "0.614", "0.863"), ("JSMA", "jsma", "0.960", "0.614",
               "0.878"), ("C&W", "cw", "0.860", "0.614", "0.997"))  # fmt: skip
IGAN_PAPER = {  # Zheng et al. Table 1 (MNIST, PGD-40 eps 0.3): Acc_i, Vul_i in %
    "natural": {"conv1": (52.6, 47.4), "conv2": (26.3, 26.3), "conv3": (21.6, 4.7),
                "conv4": (9.9, 11.7), "fc1": (4.3, 5.6), "fc2": (3.0, 1.3), "fc3": (3.5, -0.5)},
    "robust": {"conv1": (95.1, 4.9), "conv2": (94.0, 1.1), "conv3": (93.9, 0.1),
               "conv4": (92.6, 1.3), "fc1": (90.1, 2.5), "fc2": (90.0, 0.1), "fc3": (89.5, 0.5)},
}  # fmt: skip
POOLING_PAPER = {  # Zheng et al. Table 2 (MNIST, eps 0.3), accuracy in %
    "max": {"pgd40": 89.33, "pgd100": 81.98, "mpgd40": 89.76, "fgsm": 95.62},
    "avg": {"pgd40": 91.56, "pgd100": 87.48, "mpgd40": 92.09, "fgsm": 95.72},
}

TABLES: tuple[SeedTable, ...] = (
    SeedTable(
        "Nguyen et al. Tables 1-2 on the digits (the paper: CIFAR-10, direct attacks on f1)",
        "lan",
        "digits_lan_detect",
        ("true positive", "true negative", "masks keep their class"),
        tuple(
            (
                name,
                (
                    (f"table2_direct.{key}.true_positive", tp),
                    (f"table2_direct.{key}.true_negative", tn),
                    (f"table1_mask_class_kept.direct/{key}", kept),
                ),
            )
            for name, key, tp, tn, kept in LAN_ATTACKS
        ),
    ),
    SeedTable(
        "Nguyen et al. Sec. 3.2: test accuracy of f1 on images and f2 on their masks "
        "(the paper: CIFAR-10)",
        "lan",
        "digits_lan_detect",
        ("f1 (images)", "f2 (LAN masks)"),
        (("test accuracy", (("f1_test_accuracy", "0.82"), ("f2_test_accuracy", "0.60"))),),
    ),
    SeedTable(
        "Zheng et al. Table 1 on the digits: Acc_i and Vul_i per layer (the paper: MNIST, "
        "PGD-40 at eps 0.3, in %)",
        "igan",
        "digits_igan_vulnerability",
        ("natural Acc_i", "natural Vul_i", "robust Acc_i", "robust Vul_i"),
        tuple(
            (
                layer,
                tuple(
                    (f"{model}.layers.{layer}.{kind}", f"{IGAN_PAPER[model][layer][i]:g}")
                    for model in ("natural", "robust")
                    for i, kind in enumerate(("acc", "vul"))
                ),
            )
            for layer in (*LOSSY_LAYERS[:2], "conv3", "conv4", "fc1", "fc2", "fc3")
        ),
    ),
    SeedTable(
        "Zheng et al. Table 2 on the digits: accuracy of the PGD-trained max- and "
        "average-pooling models under attack (the paper: MNIST, eps 0.3, in %)",
        "igan",
        "digits_pooling_study",
        ("PGD-40", "PGD-100", "M-PGD-40", "FGSM"),
        tuple(
            (
                f"{kind} pooling",
                tuple(
                    (f"{kind}.{attack}", f"{POOLING_PAPER[kind][attack]:g}")
                    for attack in ("pgd40", "pgd100", "mpgd40", "fgsm")
                ),
            )
            for kind in ("max", "avg")
        ),
    ),
)

SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("digits_train", "digits: classifier f (LAN's f1) test accuracy", "test_accuracy"),
    ("digits_igan_train", "digits: InterpretGAN natural classifier", "natural.test_accuracy"),
    ("digits_igan_train", "digits: InterpretGAN robust classifier", "robust.test_accuracy"),
    ("digits_pooling_study", "digits: average-pooling twin (clean, study images)", "avg.clean"),
)


def settings_table(
    settings: Sequence[tuple[str, str, str]],
    runs: Mapping[str, Sequence[Metrics]],
    origins: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The setting numbers a reader checks first (e.g. classifier accuracy), over seeds."""
    rows = []
    for source, what, key in settings:
        try:
            rows.append({"what": what, **spread(float(lookup(m, key)) for m in runs[source])})
        except (KeyError, TypeError) as err:
            where = (origins or {}).get(source, source)
            raise StoreError(f"{where}: no '{key}' ({err})") from None
    return rows


__all__ = ["CLAIMS", "SETTINGS", "TABLES", "settings_table", "within"]
