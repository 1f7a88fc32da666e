"""The `tune` command: search a spec's params and `train:` settings on Optuna."""

from __future__ import annotations

import argparse
from pathlib import Path

from builder.cli import Command, UsageError, common_options, parse_overrides, register_command

from ..search.study import PRUNERS, SAMPLERS
from .training import train_overrides, train_setting_options


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number above 0, not '{text}'") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a number above 0, not '{text}'")
        return value

    return parse


def _tune_arguments(parser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="a spec file or zoo spec name")
    parser.add_argument("--search", action="append", metavar="NAME=FORM",
                        help="search a param or train.KEY.PATH too (repeatable): int(LOW,HIGH[,log][,step=S]), "
                             "float(LOW,HIGH[,log][,step=S]) or choice(A,B,...); the spec's search: section "
                             "holds the rest")
    parser.add_argument("--trials", type=_positive(int), default=20,
                        help="finish when the study has this many finished trials, counting those of earlier "
                             "runs of the command and of other processes (default 20)")
    parser.add_argument("--timeout", type=_positive(float), metavar="MIN",
                        help="start no trial after this many minutes")
    parser.add_argument("--metric", help="what to optimise: a per-epoch log (val_accuracy) or a figure of "
                                         "metrics.json (map50, recall_at_1); default: the trainer's own")
    parser.add_argument("--direction", choices=("maximize", "minimize"),
                        help="default: from the metric's name (accuracy, map, recall: maximize; loss, error: "
                             "minimize)")
    parser.add_argument("--sampler", choices=list(SAMPLERS), default="tpe",
                        help="; ".join(f"{name}: {text}" for name, text in SAMPLERS.items()) + " (default tpe)")
    parser.add_argument("--pruner", choices=list(PRUNERS), default="median",
                        help="; ".join(f"{name}: {text}" for name, text in PRUNERS.items()) + " (default median)")
    parser.add_argument("--study", metavar="NAME", help="the study's name (default: the spec's name)")
    parser.add_argument("--storage", metavar="URL",
                        help="where the study lives, shared by every process that runs the same command: "
                             "sqlite:///FILE, postgresql://..., mysql://... or journal:FILE "
                             "(default: sqlite in the study folder)")
    parser.add_argument("--out", default="studies",
                        help="parent of the study folder, which holds trials/, results.csv, best.yaml and the "
                             "pictures (default: studies)")
    parser.add_argument("--seed", type=int, help="seed the sampler (default: fresh randomness, so that "
                                                 "processes sharing a study sample differently)")
    parser.add_argument("--progress", action="store_true", help="show each trial's progress bars")
    train_setting_options(parser)
    common_options(parser)


def cmd_tune(args) -> int:
    from builder import load_spec
    from builder.language.search_space import check_space, parse_search_flag
    from builder.language.train_section import resolve_train

    from ..run.training import trainer_for
    from ..search.objective import TrialPlan, direction_of
    from ..search.study import StudyPlan, default_storage, grid_size, shown_storage

    overrides = parse_overrides(args.overrides)
    spec = load_spec(args.spec, overrides)
    dimensions = [*spec.search, *(parse_search_flag(text) for text in args.search or [])]
    check_space(dimensions, spec.document, spec.file)
    if not dimensions:
        raise UsageError(f"{spec.file} has no search: section; give one, or --search NAME=FORM")
    settings = train_overrides(args)
    config = resolve_train(spec.train, settings, spec.file)
    trainer = trainer_for(config)
    metric = args.metric or trainer.search_metric
    if metric is None:
        raise UsageError(f"the {config['trainer']} trainer has no figure of its own to optimise; name one with "
                         "--metric (a per-epoch log of history.csv, or a figure of metrics.json)")
    missing = trainer.unmeasured(metric, config)
    if missing:
        raise UsageError(missing)
    direction = args.direction or direction_of(metric)
    if direction is None:
        raise UsageError(f"--metric {metric}: its name does not say whether higher is better; give --direction")
    name = args.study or spec.name
    folder = Path(args.out) / name
    folder.mkdir(parents=True, exist_ok=True)
    storage_url = args.storage or default_storage(folder)
    trial = TrialPlan(spec.file, dimensions, metric, name, shown_storage(storage_url), folder, overrides, settings,
                      verbose=1 if args.progress else 0)
    plan = StudyPlan(trial, direction, args.sampler, args.pruner, args.trials, args.timeout, args.seed, storage_url,
                     config["epochs"])
    if args.sampler == "grid" and grid_size(dimensions) < plan.trials:
        plan.trials = grid_size(dimensions)
        print(f"the grid has {plan.trials} combinations: the study ends after {plan.trials} trials")
    return _tune(plan, spec)


def _tune(plan, spec) -> int:
    from ..search.objective import shown
    from ..search.results import draw_pictures, table, trial_rows, write_best_spec, write_csv
    from ..search.study import finished, make_storage, open_study, rerun_orphans, run_study

    storage = make_storage(plan.storage_url)
    study = open_study(plan, storage)
    for number in rerun_orphans(study, storage):
        print(f"trial {number} was left running by a process that has ended; it runs again")
    folder, dimensions = plan.trial.folder, plan.trial.dimensions
    print(f"study {plan.name} ({plan.trial.storage}): {plan.direction} {plan.trial.metric} over "
          f"{', '.join(map(str, dimensions))}; {finished(study)} of {plan.trials} trials finished; study folder "
          f"{folder}", flush=True)
    try:
        run_study(plan, study)
    finally:
        rows = trial_rows(study, dimensions)
        write_csv(rows, folder / "results.csv")
    print("\n" + table(rows, dimensions, plan.trial.metric, plan.direction))
    complete = [trial for trial in study.get_trials(deepcopy=False) if trial.state.name == "COMPLETE"]
    if not complete:
        print(f"\nno trial has completed yet; results.csv is in {folder}")
        return 1 if finished(study) >= plan.trials else 0
    best = study.best_trial
    path = write_best_spec(spec, best, plan.trial.metric, plan.name, folder / "best.yaml")
    pictures = draw_pictures(study, folder, plan.trial.metric)
    print(f"\nbest: trial {best.number}, {plan.trial.metric} {best.value:.4f} ("
          + ", ".join(f"{key}={shown(value)}" for key, value in best.params.items()) + f"); run folder "
          f"{best.user_attrs.get('run')}\n{folder}: results.csv, best.yaml"
          + "".join(f", {name}" for name in pictures) + f"\ntrain it: python -m builder train {path}")
    return 0


register_command(Command(
    "tune", "search a spec's params and train settings (Optuna)",
    "Search the spec's search: section (and --search entries) with Optuna: each trial trains an ordinary run "
    "folder under STUDY_FOLDER/trials/, reports each epoch to the pruner, and is kept in the study's storage, so "
    "running the same command again (or on other machines with a shared --storage) continues the study. Writes "
    "results.csv, best.yaml and Optuna's pictures to the study folder.",
    _tune_arguments, cmd_tune, 45))
