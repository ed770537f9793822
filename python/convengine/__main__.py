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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="convengine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    info_parser = commands.add_parser("info", help="show the build, kernel variant and extras")
    info_parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    if args.command == "info":
        _print_info(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
