"""Accuracy per minute of training: the classic recipe, our default CNN and the logistic baseline,
trained one after the other on the seed project's scale, scored on the test photos after the
same wall-clock budgets.

    python benchmarks/accuracy.py                         # budgets 5, 10, 20 min: about 65 min in all
    python benchmarks/accuracy.py --budgets 0.5,1 --train-images 800 --test-images 200   # about 4 min

Total time is about 3 x the last budget (the three recipes train in turn), plus the data set-up
and the test evaluations, which do not count against a budget: with the defaults, 60 minutes of
training and about 5 more.

Data: --train-images photos sampled (seeded, half per class) from the shared Training_Set and
--test-images from the shared Test_Set -- 8,000 and 2,000 by default, the classic tutorial's
scale -- linked (not copied) into a temporary folder in the Training_Set/Test_Set layout.

Recipes, each through classifier.data.image_dataset with fresh datasets (so each pays for its own
decoding in its first epoch):
- classic (the anchor): make_model("classic", 64), batch 64, plain Adam at its default rate, as
  the Keras 2 tutorial compiled it; no epoch limit;
- cnn: make_model("cnn", config.IMAGE_SIZE), config.BATCH_SIZE, compiled as train_CNN.py does
  (AdamW, warm-up + cosine schedule over --epochs epochs);
- logistic: make_model("logistic", config.IMAGE_SIZE), compiled the same way.

The clock runs while a recipe trains. A callback checks it after every batch; when a budget is
crossed it stops the clock, scores the model on all the test photos (model.evaluate, augmentation
off), and starts the clock again; at the last budget it stops training. A recipe that finishes its
epochs early keeps its final score for the budgets it did not reach.
"""
import argparse
import math
import tempfile
import time
from pathlib import Path

import common
from classifier import config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="5,10,20", help="training minutes after which to score, comma-separated (default: %(default)s)")
    parser.add_argument("--train-images", type=int, default=8000, help="training photos sampled (default: %(default)s)")
    parser.add_argument("--test-images", type=int, default=2000, help="test photos sampled (default: %(default)s)")
    parser.add_argument("--recipes", default="classic,cnn,logistic", help="which recipes, in order; the first is the anchor (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=config.EPOCHS, help="schedule length of the cnn and logistic recipes (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=config.SEED, help="sampling, shuffling, augmentation, weights (default: %(default)s)")
    args = parser.parse_args()
    args.budgets = sorted(float(minutes) for minutes in args.budgets.split(","))
    args.recipes = args.recipes.split(",")
    unknown = set(args.recipes) - set(RECIPES)
    if unknown:
        parser.error(f"unknown recipe {', '.join(sorted(unknown))}: choose from classic, cnn, logistic")
    return args


def sample_dataset(workdir, train_images, test_images, seed):
    for split, count in ((config.TRAIN_DIR, train_images), (config.TEST_DIR, test_images)):
        chosen = common.sample_photos(common.SHARED_DATASET / split, count, seed)
        common.link_photos(chosen, Path(workdir, split))
    return Path(workdir)


# name: (image size, batch size) -- the classic tutorial's 64 px and batch 64, and our defaults.
RECIPES = {"classic": (64, 64), "cnn": (config.IMAGE_SIZE, config.BATCH_SIZE), "logistic": (config.IMAGE_SIZE, config.BATCH_SIZE)}


def build_model(name, steps_per_epoch, epochs):
    """(the recipe's model, compiled as the recipe says, and its epoch limit)."""
    import keras
    from classifier.model import make_model
    from classifier.training import compile_model

    model = make_model(name, RECIPES[name][0])
    if name == "classic":
        model.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy", metrics=["accuracy"])
        return model, 10_000  # constant learning rate: only the budget stops it
    compile_model(model, steps_per_epoch, epochs, config.LEARNING_RATE)
    return model, epochs


def budget_clock(model, test_ds, budgets, steps_per_epoch, report):
    """A callback that scores the model on test_ds each time a budget (seconds of training) is crossed.

    report(budget index, accuracy, epochs trained, minutes trained, finished) is called for each score;
    finished is True when the recipe ran out of epochs before that budget.
    """
    import keras

    state = {"trained": 0.0, "since": None, "epoch": 0, "scored": 0}

    def score(batch_in_epoch, finished=False):
        state["trained"] += time.perf_counter() - state["since"]
        _, accuracy = model.evaluate(test_ds, verbose=0)  # augmentation and dropout off
        report(state["scored"], accuracy, state["epoch"] + batch_in_epoch / steps_per_epoch, state["trained"] / 60, finished)
        state["scored"] += 1
        state["since"] = time.perf_counter()  # the evaluation is not training time

    def on_batch_end(batch, logs):
        if time.perf_counter() - state["since"] + state["trained"] >= budgets[state["scored"]]:
            score(batch + 1)
            if state["scored"] == len(budgets):
                model.stop_training = True

    def on_epoch_end(epoch, logs):
        state["epoch"] = epoch + 1

    def on_train_end(logs):
        # Out of epochs before the last budget: the final model's score stands for the rest.
        while state["scored"] < len(budgets):
            score(0, finished=True)

    def on_train_begin(logs):
        state["since"] = time.perf_counter()

    return keras.callbacks.LambdaCallback(on_train_begin=on_train_begin, on_train_batch_end=on_batch_end,
                                          on_epoch_end=on_epoch_end, on_train_end=on_train_end)


def run_recipe(name, data_dir, args):
    """Train one recipe under the budgets; return [(accuracy, epochs, minutes)] per budget."""
    import keras
    from classifier.data import check_layout, image_dataset

    keras.backend.clear_session()
    keras.utils.set_random_seed(args.seed)
    class_names = check_layout(data_dir)
    image_size, batch_size = RECIPES[name]
    started = time.perf_counter()
    train_ds, count, _ = image_dataset(data_dir / config.TRAIN_DIR, class_names, image_size, batch_size, shuffle=True, seed=args.seed)
    test_ds, _, _ = image_dataset(data_dir / config.TEST_DIR, class_names, image_size, batch_size)
    steps_per_epoch = math.ceil(count / batch_size)
    model, epochs = build_model(name, steps_per_epoch, args.epochs)
    print(f"\n{name}: {image_size} px, batch {batch_size}, {model.count_params():,} parameters "
          f"(data set-up {time.perf_counter() - started:.0f} s, not counted)", flush=True)

    scores = []

    def report(index, accuracy, epochs_done, minutes, finished):
        scores.append((accuracy, epochs_done, minutes))
        note = f", all {epochs} epochs done before the budget" if finished else ""
        print(f"  after {args.budgets[index]:g} min: test accuracy {accuracy:.2%} "
              f"({epochs_done:.1f} epochs, {minutes:.2f} min trained{note})", flush=True)

    clock = budget_clock(model, test_ds, [minutes * 60 for minutes in args.budgets], steps_per_epoch, report)
    model.fit(train_ds, epochs=epochs, callbacks=[clock], shuffle=False, verbose=0)
    return scores


def print_table(results, budgets):
    anchor = next(iter(results))
    print(f"\nTest accuracy after each training budget ({anchor} is the anchor; "
          "error ratio = recipe's errors / anchor's errors, below 1 is better)")
    print(f"{'budget':<10}" + "".join(f"{name:>24}" for name in results))
    for index, budget in enumerate(budgets):
        row = f"{budget:g} min".ljust(10)
        for name, scores in results.items():
            accuracy, epochs, _ = scores[index]
            cell = f"{accuracy:.2%} ({epochs:.1f} ep)"
            if name != anchor:
                anchor_error = 1 - results[anchor][index][0]
                cell += f" x{(1 - accuracy) / anchor_error:.2f}" if anchor_error else ""
            row += f"{cell:>24}"
        print(row)


def main():
    args = parse_args()
    common.require_shared_dataset()
    print(f"Accuracy per training budget ({', '.join(f'{b:g}' for b in args.budgets)} min): "
          f"{args.train_images} training / {args.test_images} test photos; {common.machine_line()}")
    common.quiet_tensorflow()
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as workdir:
        data_dir = sample_dataset(workdir, args.train_images, args.test_images, args.seed)
        results = {name: run_recipe(name, data_dir, args) for name in args.recipes}
    print_table(results, args.budgets)


if __name__ == "__main__":
    main()
