"""What the unknown answer buys, and what it costs: photos of no class flagged against real ones flagged.

    python benchmarks/open_set.py                      # the shipped model.h5, all of Test_Set
    python benchmarks/open_set.py --test-photos 1000   # a quicker look

For the model's own threshold and a few others it prints the share of Test_Set (every photo one
of the model's classes) labelled `unknown`, against the share of each --other folder (photos of
none of them; by default ../shared/datasets/neither, ImageNet photos with no cat and no dog, the
animals among them counted apart as the hard look-alikes). The same for the usual alternative,
labelling a photo unsure when its top probability is low. It draws both curves in
docs/open_set.png. Then the cost: ms per photo of the network with and without its unknown score,
on the same decoded tensors, side by side in one run.
"""
import argparse
import time
from pathlib import Path

import numpy as np

import common
from common import NEITHER, PROJECT, SHARED_DATASET


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(PROJECT / "model.h5"), help="model.h5 to measure (default: the shipped one)")
    parser.add_argument("--test-photos", type=int, default=None, help="photos of Test_Set to score (default: all)")
    parser.add_argument("--other", action="append", default=None, metavar="DIR",
                        help=f"a folder of photos of none of the classes; repeatable (default: {NEITHER})")
    parser.add_argument("--figure", default=str(PROJECT / "docs" / "open_set.png"), help="where to draw the curves")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def scored(model, info, paths):
    """(top probabilities, unknown scores) of paths, as predict.py computes them."""
    from classifier.images import BadImage
    from classifier.prediction import predict_files

    rows = [result for result in predict_files(model, info, paths, 32, unknown_above=None) if not isinstance(result, BadImage)]
    return np.array([row.confidence for row in rows]), np.array([row.unknown_score for row in rows]), \
        np.array([row.index for row in rows])


def cost(model, info, count=64, repeats=5):
    """ms per photo of the bare network and of the network with its unknown score, alternated on the same batch."""
    from classifier.prediction import inference_model

    images = np.random.default_rng(0).uniform(0, 255, (count, info.image_size, info.image_size, 3)).astype("float32")
    timings = {"network alone": [], "with the unknown score": []}
    candidates = (model, inference_model(model, info))  # built once: a new model would be traced again
    for candidate in candidates:
        candidate.predict_on_batch(images)  # trace before timing
    for _ in range(repeats):
        for name, candidate in zip(timings, candidates):
            started = time.perf_counter()
            candidate.predict_on_batch(images)
            timings[name].append((time.perf_counter() - started) * 1000 / count)
    return {name: float(np.median(values)) for name, values in timings.items()}


def draw(path, curves, threshold_points):
    from classifier.reports.plots import pyplot

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 4.4))
    for label, (real, other) in curves.items():
        axis.plot(100 * real, 100 * other, label=label)
    for label, (x, y) in threshold_points.items():
        axis.plot(100 * x, 100 * y, "o", color="black")
        axis.annotate(label, (100 * x, 100 * y), textcoords="offset points", xytext=(6, -12), fontsize=8)
    axis.set(xscale="log", xlim=(0.1, 30), ylim=(0, 101), xlabel="Test_Set photos (cats and dogs) flagged, % (log scale)",
             ylabel="photos of neither flagged, %", title="Labelling 'unknown': photos of something else caught")
    axis.grid(alpha=0.3, which="both")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main():
    args = parse_args()
    common.require_shared_dataset()
    print(common.machine_line())
    from classifier.images import find_images
    from classifier.prediction import load_classifier

    model, info = load_classifier(args.model, compiled=False)  # Keras: the cost below compares the network with and without the score
    if info.scorer is None:
        raise SystemExit(f"error: {args.model} has no unknown score: train_CNN.py --fit-unknown --model {args.model}")
    chosen = common.sample_photos(SHARED_DATASET / "Test_Set", args.test_photos, args.seed)
    test_paths = [path for paths in chosen.values() for path in paths]
    truth = np.array([info.class_names.index(name) for name, paths in chosen.items() for _ in paths])
    started = time.time()
    test_top, test_unknown, test_index = scored(model, info, test_paths)
    print(f"Test_Set: {len(test_paths)} photos scored in {time.time() - started:.0f} s; accuracy {np.mean(test_index == truth):.2%} "
          "(unchanged by the unknown score: a flagged photo keeps its probabilities)")
    others = {}
    for folder in args.other or [NEITHER]:
        paths, _ = find_images([Path(folder)])
        top, unknown, _ = scored(model, info, paths)
        others[Path(folder).name] = (paths, top, unknown)
        if Path(folder) == NEITHER:  # its animals (wolves, foxes, bears...) are the hard look-alikes
            animals = common.look_alike_animals(paths)
            others["neither: animals"] = ([p for p, a in zip(paths, animals) if a], top[animals], unknown[animals])
            others["neither: objects, food, scenes"] = ([p for p, a in zip(paths, animals) if not a], top[~animals], unknown[~animals])

    threshold = info.scorer.threshold
    quantiles = [0.995, 0.98, 0.95]  # of the Test_Set scores: other operating points, for the table only
    thresholds = [("the model's (1% of validation)", threshold)] + \
        [(f"{1 - q:.1%} of Test_Set", float(np.quantile(test_unknown, q))) for q in quantiles]
    header = f"{'threshold':<32}{'score >':>9}{'Test_Set':>10}" + "".join(f"{name[:22]:>24}" for name in others)
    print("\nLabelled unknown (unknown score above the threshold):")
    print(header)
    for name, value in thresholds:
        print(f"{name:<32}{value:>9.4f}{np.mean(test_unknown > value):>10.2%}"
              + "".join(f"{np.mean(unknown > value):>24.2%}" for _, _, unknown in others.values()))
    first = next(iter(others))
    _, other_top, other_unknown = others[first]
    cut = float(np.quantile(test_top, 0.01))  # the top-probability rule at 1 % of Test_Set
    print(f"\nFor comparison, 'unsure' below the top probability {cut:.4f} (1% of Test_Set): "
          f"{np.mean(test_top < cut):.2%} of Test_Set, {np.mean(other_top < cut):.2%} of {first}")
    missed = [path.name for path, score in zip(others[first][0], other_unknown) if score <= threshold]
    print(f"{first}: {len(missed)} of {len(other_unknown)} not flagged at the model's threshold: {', '.join(missed[:20])}")

    grid = np.quantile(np.concatenate([test_unknown, other_unknown]), np.linspace(0, 1, 400))
    grid_top = np.quantile(np.concatenate([test_top, other_top]), np.linspace(0, 1, 400))
    curves = {"unknown score (nearest training photos)": (np.array([np.mean(test_unknown > g) for g in grid]),
                                                          np.array([np.mean(other_unknown > g) for g in grid])),
              "top probability below P (--unsure-below)": (np.array([np.mean(test_top < g) for g in grid_top]),
                                                           np.array([np.mean(other_top < g) for g in grid_top]))}
    draw(args.figure, curves, {"the model's threshold": (np.mean(test_unknown > threshold), np.mean(other_unknown > threshold))})
    print(f"Curves: {args.figure}")

    timing = cost(model, info)
    plain, with_score = timing["network alone"], timing["with the unknown score"]
    print(f"\nCost on decoded tensors, batch 64, median of 5: network alone {plain:.2f} ms/photo, with the unknown score "
          f"{with_score:.2f} ms/photo: +{with_score - plain:.2f} ms ({(with_score - plain) / plain:+.1%})")


if __name__ == "__main__":
    main()
