"""Presenting results: the terminal table, comparison with an earlier JSON run, a plot."""

import math

from .runner import CONTENTION_LIMIT

# A reference differing from convengine by more than this (relative to its largest value) is
# flagged as a mismatch: float32 results of the same computation agree far better.
MISMATCH_LIMIT = 1e-3


def _ms(seconds):
    return f"{seconds * 1e3:.3f}"


def _best_of(rows, prefix):
    """The fastest row whose implementation name starts with prefix (torch: NCHW or
    channels_last, whichever is faster), or None."""
    candidates = [r for r in rows if r["impl"].startswith(prefix)]
    return min(candidates, key=lambda r: r["median_s"]) if candidates else None


def by_case(results):
    cases = {}
    for row in results:
        cases.setdefault(row["case"], []).append(row)
    return cases


def ratios(rows):
    """{reference: convengine time / reference time} (below 1: convengine is faster)."""
    ours = next(r for r in rows if r["impl"] == "convengine")
    out = {}
    for prefix in ("numpy", "torch"):
        best = _best_of(rows, prefix)
        if best is not None:
            out[prefix] = ours["median_s"] / best["median_s"]
    return out


def format_table(run):
    """The readable table: one line per case, convengine's figures and its ratio per reference."""
    machine = run["machine"]
    lines = [
        f"convengine {machine['convengine']} on {machine['cpu']} ({machine['isa']}, "
        f"{machine['threads']} threads); FP32 FMA peak {machine['fma_peak_gflops']:.0f} GFLOP/s",
    ]
    blas = machine.get("numpy_blas")
    lines.append(f"numpy {machine['numpy']}"
                 + (f" ({blas['internal_api']} {blas['version']}, kernel {blas['architecture']})"
                    if blas else " (BLAS details need threadpoolctl)")
                 + (f"; torch {machine['torch']}" if machine.get("torch") else "; torch not installed"))
    backends = machine.get("torch_backends")
    if backends:
        onednn = "on" if backends["onednn_available"] and backends["onednn_enabled"] else "off"
        lines.append(f"torch CPU backends: oneDNN (convolution, pooling) {onednn}; "
                     + "; ".join(backends["libraries"]))
    header = (f"{'case':<44} {'ms':>9} {'±%':>5} {'GFLOP/s':>8} {'%peak':>6} {'vs numpy':>9} "
              f"{'vs torch':>9} {'max err':>8} {'mem MiB':>8}")
    lines += ["", header, "-" * len(header)]
    warnings = []
    for case, rows in by_case(run["results"]).items():
        ours = next(r for r in rows if r["impl"] == "convengine")
        r = ratios(rows)
        worst_error = max(row["max_rel_error"] for row in rows)
        memory = ours["peak_extra_memory_bytes"]
        cells = [
            f"{case:<44}",
            f"{_ms(ours['median_s']):>9}",
            f"{100 * ours['spread']:>5.1f}",
            f"{ours['gflops']:>8.1f}" if ours["gflops"] else f"{'-':>8}",
            f"{100 * ours['peak_fraction']:>6.0f}" if ours["peak_fraction"] else f"{'-':>6}",
            f"{r['numpy']:>9.2f}" if "numpy" in r else f"{'-':>9}",
            f"{r['torch']:>9.2f}" if "torch" in r else f"{'-':>9}",
            f"{worst_error:>8.1e}",
            f"{memory / 2**20:>8.1f}" if memory is not None else f"{'-':>8}",
        ]
        lines.append(" ".join(cells))
        if worst_error > MISMATCH_LIMIT:
            warnings.append(f"{case}: results differ from a reference by {worst_error:.1e}")
        loads = [row["other_cpu_load"] for row in rows if not math.isnan(row["other_cpu_load"])]
        if loads and max(loads) > CONTENTION_LIMIT:
            warnings.append(f"{case}: other processes used {max(loads):.1f} cores while it was "
                            "timed; its figures may be slow")
    geo = geometric_means(run["results"])
    if geo:
        lines.append("")
        lines.append("geometric mean of convengine time / reference time: "
                     + ", ".join(f"{k} {v:.2f}" for k, v in geo.items()))
    lines.append("(ratios below 1: convengine is faster; ±%: interquartile range / median)")
    if warnings:
        lines += ["", "warnings:"] + [f"  - {w}" for w in warnings]
    return "\n".join(lines)


def geometric_means(results):
    per_ref = {}
    for rows in by_case(results).values():
        for ref, value in ratios(rows).items():
            per_ref.setdefault(ref, []).append(value)
    return {ref: math.exp(sum(map(math.log, v)) / len(v)) for ref, v in per_ref.items()}


def format_comparison(old_run, new_run):
    """convengine's time per case now against an earlier run (below 1: faster now)."""
    old = {r["case"]: r for r in old_run["results"] if r["impl"] == "convengine"}
    lines = [f"{'case':<44} {'old ms':>9} {'new ms':>9} {'new/old':>8}"]
    for row in new_run["results"]:
        if row["impl"] != "convengine" or row["case"] not in old:
            continue
        before = old[row["case"]]["median_s"]
        lines.append(f"{row['case']:<44} {_ms(before):>9} {_ms(row['median_s']):>9} "
                     f"{row['median_s'] / before:>8.2f}")
    if len(lines) == 1:
        lines.append("(no case in common with the earlier run)")
    return "\n".join(lines)


def save_plot(run, path):
    """A bar chart of convengine time / reference time per case (log scale)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("bench: --plot needs matplotlib (pip install 'convengine[plot]')") from None
    cases = by_case(run["results"])
    names = list(cases)
    refs = sorted({ref for rows in cases.values() for ref in ratios(rows)})
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(names) + 1.5))
    height = 0.8 / max(len(refs), 1)
    for i, ref in enumerate(refs):
        values = [ratios(cases[n]).get(ref, float("nan")) for n in names]
        ax.barh([j + i * height for j in range(len(names))], values, height=height, label=f"vs {ref}")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks([j + height * (len(refs) - 1) / 2 for j in range(len(names))])
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("convengine time / reference time (below 1: convengine faster)")
    machine = run["machine"]
    ax.set_title(f"convengine {machine['convengine']}, {machine['threads']} threads, {machine['isa']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
