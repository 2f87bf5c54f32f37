"""Fine-tuning recipes for a pretrained model, compared on the validation photos alone.

A new default recipe is chosen here, never on Test_Set (which this script does not read). Training_Set
is split as train_CNN.py splits it (same share, same seed); the frozen blocks run once over the
training photos and their mirror images, the validation photos and the photos of
../shared/datasets/neither; the new head trains once, as the default head phase does. Then each recipe
fine-tunes the top blocks from that same head: E epochs at a share S of the learning rate, with the
default cosine decay. After each epoch it prints the validation accuracy, loss and calibration error
(ECE, before and after train_CNN.py's temperature), and the share of the photos of neither, and of
the animals among them, that the unknown score flags at its threshold (1 % of the validation
photos), as train_CNN.py fits it. With --average, also the mean weights of the last epochs.

    python benchmarks/recipes.py --recipes 1:0.0333,3:0.0333,3:0.1 --average

The whole shared set: about 9 min for the frozen blocks, 1 min for the head, then 2-3 min an epoch
(2 CPU cores). --training-photos N trains on N of them, for a quick check.
"""
import argparse
import math
import random
import sys
import time

import numpy as np

import common
from common import NEITHER, SHARED_DATASET


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default="1:0.0333,3:0.0333,3:0.1",
                        help="comma-separated EPOCHS:SHARE, the fine-tuning epochs and their learning rate as a share of the head's")
    parser.add_argument("--average", action="store_true", help="also score the mean weights of each recipe's last 2, 3... epochs")
    parser.add_argument("--arch", default=None, help="a pretrained model of the registry (default: train_CNN.py's)")
    parser.add_argument("--training-photos", type=int, default=None, help="use only N of the training photos, drawn at random (a quick check)")
    args = parser.parse_args()
    try:
        args.recipes = [(int(epochs), float(share)) for epochs, share in (recipe.split(":") for recipe in args.recipes.split(","))]
    except ValueError:
        parser.error(f"--recipes {args.recipes}: expected EPOCHS:SHARE pairs, such as 3:0.0333,3:0.1")
    return args


class Bench:
    """The cached frozen features of one split of Training_Set, the trained head, and the scoring."""

    def __init__(self, args):
        common.quiet_tensorflow()
        import keras
        from classifier.config import RunConfig
        from classifier.data import check_layout, labelled_samples
        from classifier.features import feature_dataset, frozen_features
        from classifier.model import MODELS, make_model, set_phase, split_frozen
        from classifier.open_set import feature_model
        from classifier.training import compile_for, load_photos, plan_phases, with_model_defaults

        config = RunConfig(data=str(SHARED_DATASET), **({"arch": args.arch} if args.arch else {}))
        if not MODELS[config.arch].pretrained:
            sys.exit(f"error: --arch {config.arch} trains from scratch: it has no head phase to start recipes from")
        photos = load_photos(with_model_defaults(config), check_layout(config.data))
        self.config = config = with_model_defaults(config, len(photos.train))
        head_phase = plan_phases(config, len(photos.train))[0]  # train_CNN.py's, whatever --training-photos samples
        self.train, self.validation = photos.train, photos.validation
        if args.training_photos:  # a seeded sample: the training photos come sorted by class
            self.train = random.Random(config.seed).sample(self.train, min(args.training_photos, len(self.train)))
        self.labels = np.array([sample.label for sample in self.validation])
        keras.utils.set_random_seed(config.seed)
        self.model = make_model(config.arch, config.image_size, 2)
        frozen, self.top = split_frozen(self.model)
        self.with_features = feature_model(self.top)
        others = labelled_samples(NEITHER.parent, [NEITHER.name], config.image_size)[0] if NEITHER.is_dir() else []
        self.animals = common.look_alike_animals([sample.path for sample in others])
        started = time.time()
        batch = config.batch_size
        train = frozen_features(frozen, self.train, config.image_size, batch, mirrors=True, verbose=0)
        validation = frozen_features(frozen, self.validation, config.image_size, batch, mirrors=False, verbose=0)
        self.others = frozen_features(frozen, others, config.image_size, batch, mirrors=False, verbose=0).astype("float32")
        print(f"Frozen blocks over {len(self.train)} training photos (and mirrors), {len(self.validation)} validation photos "
              f"and {len(others)} photos of neither: {time.time() - started:.0f} s", flush=True)
        self.stream = feature_dataset(train, self.train, batch, shuffle=True, seed=config.seed, mirrored=True)
        self.unmirrored = feature_dataset(np.concatenate([train[:, 0], validation]), self.train + self.validation, batch)
        self.steps = math.ceil(len(self.train) / batch)
        set_phase(self.model, head_phase.kind)
        compile_for(self.top, head_phase, self.steps)
        started = time.time()
        self.top.fit(self.stream, epochs=head_phase.end_epoch, verbose=0)
        self.head = self.weights()
        print(f"{'recipe (epochs:share)':<34}{'val acc':>9}{'wrong':>7}{'loss':>8}{'ECE':>8}{'ECE T':>8}"
              + (f"{'neither':>9}{'animals':>9}" if len(others) else f"  ({NEITHER} not found: no unknown figures)"))
        self.score(f"head ({time.time() - started:.0f} s)")

    def weights(self):
        return [weight.numpy() for weight in self.top.weights]

    def load(self, values):
        for weight, value in zip(self.top.weights, values):
            weight.assign(value)

    def fine_tune(self, epochs, share, average):
        """Fine-tune from the trained head, scoring each epoch (and the means of the last epochs)."""
        from classifier.model import Phase, set_phase
        from classifier.training import PlannedPhase, compile_for

        self.load(self.head)
        set_phase(self.model, Phase.FINE_TUNE)
        compile_for(self.top, PlannedPhase(Phase.FINE_TUNE, 0, epochs, self.config.learning_rate * share, warmup=False), self.steps)
        started, kept = time.time(), []
        for epoch in range(1, epochs + 1):
            self.top.fit(self.stream, epochs=1, verbose=0)
            kept.append(self.weights())
            self.score(f"{epochs}:{share:g} epoch {epoch} ({time.time() - started:.0f} s)")
        for count in range(2, epochs + 1) if average else ():
            self.load([np.mean(values, axis=0) for values in zip(*kept[-count:])])
            self.score(f"{epochs}:{share:g} mean of the last {count}")

    def score(self, name):
        import keras
        from classifier.open_set import fit_after_training

        outputs = self.with_features.predict(self.unmirrored, verbose=0)
        scorer, _, (ece_before, ece_after) = fit_after_training(outputs, len(self.train), list(self.labels), self.config.seed)
        probabilities = outputs[0][len(self.train):]
        wrong = int(np.sum(probabilities.argmax(axis=1) != self.labels))
        loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(self.labels, probabilities)))
        line = f"{name:<34}{1 - wrong / len(self.labels):>9.2%}{wrong:>7}{loss:>8.4f}{ece_before:>8.2%}{ece_after:>8.2%}"
        if len(self.others):
            flagged = scorer.scores(self.with_features.predict(self.others, verbose=0)[1]) > scorer.threshold
            line += f"{np.mean(flagged):>9.2%}{np.mean(flagged[self.animals]):>9.2%}"
        print(line, flush=True)


def main():
    args = parse_args()
    common.require_shared_dataset()
    print(common.machine_line())
    bench = Bench(args)
    for epochs, share in args.recipes:
        bench.fine_tune(epochs, share, args.average)


if __name__ == "__main__":
    main()
