"""The `convengine` command (also `python -m convengine`)."""

import argparse
import json
import sys


def _print_info(as_json):
    from .runtime import info

    facts = info()
    if as_json:
        print(json.dumps(facts, indent=2))
        return
    print(f"convengine {facts['version']}")
    print(f"  kernel variant : {facts['isa']} (compiled: {', '.join(facts['compiled_isas'])}; "
          f"this CPU supports: {', '.join(facts['cpu_supported_isas'])})")
    print(f"  threads        : {facts['num_threads']}")
    print(f"  OpenMP         : {facts['openmp']['version']} ({facts['openmp']['library'] or '?'})")
    print(f"  CPU            : {facts['cpu']}")
    print(f"  Python, NumPy  : {facts['python']}, {facts['numpy']}")
    print("  optional extras:")
    for name, status in facts["extras"].items():
        state = status["version"] if status["available"] else f"not available ({status['error']})"
        print(f"    {name:<11}: {state}")


def _progress_printer():
    """Progress on stderr: tqdm's bar when installed, else one line per case."""
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    bar = None

    def progress(i, n, case):
        nonlocal bar
        if tqdm is not None:
            if bar is None:
                bar = tqdm(total=n, unit="case", file=sys.stderr, leave=False)
            bar.set_description(case.name)
            bar.update(0 if i == 0 else 1)
        else:
            print(f"[{i + 1}/{n}] {case.name}", file=sys.stderr, flush=True)

    def close():
        if bar is not None:
            bar.close()

    return progress, close


def _bench(args):
    from .bench import report, run_suite, select_cases

    try:
        cases = select_cases(args.suite, args.filter)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if not cases:
        print(f"bench: no case of suite {args.suite!r} matches --filter {args.filter!r}",
              file=sys.stderr)
        return 2
    old = None
    if args.compare:
        try:
            with open(args.compare) as f:
                old = json.load(f)
            old["results"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            print(f"bench: --compare {args.compare}: not a JSON file written by --json ({error})",
                  file=sys.stderr)
            return 2
    progress, close = _progress_printer()
    try:
        run = run_suite(cases, args.threads, min_time=args.min_time, progress=progress)
    finally:
        close()
    run["settings"] = {"suite": args.suite, "filter": args.filter, "min_time": args.min_time}
    print(report.format_table(run))
    if old is not None:
        print()
        print(report.format_comparison(old, run))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(run, f, indent=2)
        print(f"\nresults written to {args.json}")
    if args.plot:
        report.save_plot(run, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="convengine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    info_parser = commands.add_parser("info", help="show the build, kernel variant and extras")
    info_parser.add_argument("--json", action="store_true", help="print JSON")

    from .bench.suites import SUITES
    from .runtime import get_num_threads

    bench = commands.add_parser(
        "bench", help="benchmark convengine against NumPy (and PyTorch when installed)")
    bench.add_argument("--suite", default="quick", choices=SUITES,
                       help="which cases to run (default: quick, a couple of minutes)")
    bench.add_argument("--filter", metavar="REGEX", help="only cases whose name matches")
    bench.add_argument("--threads", type=_positive_int, default=get_num_threads(),
                       help="threads for every implementation (default: %(default)s)")
    bench.add_argument("--min-time", type=float, default=0.3, metavar="SECONDS",
                       help="time each implementation at least this long (default: 0.3)")
    bench.add_argument("--json", metavar="PATH", help="also write results and machine facts")
    bench.add_argument("--plot", metavar="PATH.png", help="also plot the ratios (matplotlib)")
    bench.add_argument("--compare", metavar="OLD.json", help="compare with an earlier --json run")

    from .training import cli as train_cli

    train_cli.add_parser(commands)

    args = parser.parse_args(argv)
    if args.command == "info":
        _print_info(args.json)
        return 0
    if args.command == "train":
        return train_cli.run(args)
    return _bench(args)


if __name__ == "__main__":
    sys.exit(main())
