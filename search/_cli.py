"""`search.py search`, `export` and `report`."""

from __future__ import annotations

import argparse
from pathlib import Path

from common import UserError


class _Search:
    NAME = "search"
    HELP = "run (or resume) a latency-constrained or Pareto architecture search"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        from ._config import add_config_flags

        parser.add_argument("--config", "-c", help="search config YAML (configs/search/*.yaml)")
        add_config_flags(parser)

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from common.settings import given

        from ._config import SearchConfig, load_config
        from ._driver import run_search
        from ._outputs import verdict, write_outputs
        from ._storage import redact

        cfg = load_config(args.config, given(args, SearchConfig))
        run_dir = Path(cfg.run_dir)
        if not cfg.quiet:
            print(f"study {cfg.study_name!r} on {redact(cfg.storage) if cfg.storage else run_dir / 'study.db'}: "
                  f"{cfg.mode}, {cfg.n_trials} trials, {cfg.workers} worker(s), proxy {cfg.proxy}, "
                  f"latency {cfg.latency_source} ({cfg.backend} / {cfg.device})", flush=True)
        study = run_search(cfg)
        paths = write_outputs(study, run_dir)
        print(verdict(study))
        if not cfg.quiet:
            print(f"wrote {paths['trials']}, {paths['selection']}, {paths['report']}")
        return 0


class _Report:
    NAME = "report"
    HELP = "write trials.csv, best/pareto.yaml and report.md (with plots) for a study"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--run-dir", dest="run_dir", required=True, help="the search's run directory")
        parser.add_argument("--storage", default=None, help="storage URL (default: RUN_DIR/study.db)")
        parser.add_argument("--study-name", dest="study_name", default=None,
                            help="study name (default: the only study in the storage)")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        import optuna

        from ._final import FINAL_SUFFIX
        from ._outputs import verdict, write_outputs
        from ._storage import open_storage

        run_dir = Path(args.run_dir)
        if args.storage is None and not (run_dir / "study.db").is_file():
            raise UserError(f"{run_dir} holds no study.db; give --storage URL of the study")
        store = open_storage(args.storage, run_dir)
        names = [s.study_name for s in optuna.get_all_study_summaries(store.storage, include_best_trial=False)
                 if not s.study_name.endswith(FINAL_SUFFIX)]  # a search's final round is part of the search
        name = args.study_name or (names[0] if len(names) == 1 else None)
        if name is None or name not in names:
            raise UserError(f"choose a study with --study-name; the storage holds: {', '.join(names) or 'none'}")
        study = optuna.load_study(study_name=name, storage=store.storage)
        paths = write_outputs(study, run_dir)
        print(verdict(study))
        print(f"wrote {paths['trials']}, {paths['selection']}, {paths['report']}")
        return 0


class _Export:
    NAME = "export"
    HELP = "write training configs for the archs a search chose, on the search's data (train.py runs them as they are)"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--run-dir", dest="run_dir", required=True, help="the search's run directory")
        parser.add_argument("--top", type=int, default=1, help="how many archs (default 1)")
        parser.add_argument("--recipe", default=None,
                            help="training recipe YAML (default: the one the search's train proxy used for its data)")
        parser.add_argument("--out-dir", dest="out_dir", default=None,
                            help="where to write (default RUN_DIR/export)")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from ._export import export_configs

        for exported in export_configs(Path(args.run_dir), args.top, args.recipe,
                                       Path(args.out_dir) if args.out_dir else None):
            print(f"wrote {exported.config}\n  train it: {exported.command}")
        return 0


COMMANDS = [_Search, _Export, _Report]
