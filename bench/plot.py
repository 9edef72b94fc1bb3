#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Turn a megaring_bench JSON report into PNG plots.

    python3 bench/plot.py REPORT.json [--out DIR]

Writes into DIR (default: REPORT's name without .json, plus "_plots"):
  latency.png       tail latency (CCDF) of every round-trip arm, and of the
                    interference arm's wake-up round trips
  throughput.png    megaring NOP slots/s against batch size (one producer),
                    beside back-to-back launches and the many-node graph
  scaling.png       slots/s and per-slot p50/p99 against producer count (and
                    slots/s with one tenant a producer)
  interference.png  GEMM slowdown, wake-up latency and host-to-device copy
                    bandwidth per megakernel setting
  host_cost.png     ns per slot, megaring CPU backend vs moodycamel
A plot whose arms were all skipped (e.g. GPU arms on a machine without a GPU)
is drawn with a note instead of data, so the set of files is always the same.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def ok_arms(report, group):
    return [a for a in report["arms"] if a["group"] == group and a["status"] == "ok"]


def skipped_note(ax, report, group):
    reasons = sorted({a.get("reason", "") for a in report["arms"]
                      if a["group"] == group and a["status"] != "ok"})
    if reasons:
        ax.text(0.5, 0.08, "not run: " + "; ".join(r for r in reasons if r)[:120],
                transform=ax.transAxes, ha="center", fontsize=8, color="gray")


def empty(ax, text):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def save(fig, out, name):
    fig.tight_layout()
    fig.savefig(os.path.join(out, name + ".png"), dpi=110)
    plt.close(fig)


def title_suffix(report):
    gpu = report.get("gpu", {})
    dev = gpu.get("name") if gpu.get("available") else "no GPU"
    host = report.get("host", {})
    return "%s | %s | %s mode | %s" % (dev, host.get("cpu_model", "?"), report.get("mode", "?"),
                                         host.get("date_utc", "?"))


def plot_ccdf(ax, arms, title):
    drew = False
    for a in arms:
        lat = a.get("latency")
        if not lat or not lat.get("quantiles"):
            continue
        qs = [q for q, _ in lat["quantiles"]]
        vs = [v / 1e3 for _, v in lat["quantiles"]]
        # CCDF: fraction of samples above each latency; the last point (q=1)
        # is drawn at 1/n so the maximum is on the plot.
        tail = [max(1.0 - q, 1.0 / max(lat["n"], 1)) for q in qs]
        ax.step(vs, tail, where="post", label="%s (p50 %.2f us)" % (a["label"], lat["p50_ns"] / 1e3))
        drew = True
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency (us, log)")
    ax.set_ylabel("fraction of samples slower (log)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if drew:
        ax.legend(fontsize=7, loc="lower left")
    return drew


def plot_latency(report, out):
    rt = ok_arms(report, "round_trip")
    wake = ok_arms(report, "interference")
    fig, axes = plt.subplots(1, 2 if wake else 1, figsize=(14 if wake else 8, 5.5), squeeze=False)
    if not plot_ccdf(axes[0][0], rt, "round trip"):
        empty(axes[0][0], "no round-trip arm ran")
    skipped_note(axes[0][0], report, "round_trip")
    if wake:
        plot_ccdf(axes[0][1], wake, "wake-up round trip after idle (interference arm)")
    fig.suptitle("latency distributions\n" + title_suffix(report), fontsize=9)
    save(fig, out, "latency")


def plot_throughput(report, out):
    arms = ok_arms(report, "throughput")
    fig, ax = plt.subplots(figsize=(8, 5.5))
    mr = sorted([a for a in arms if a["name"].startswith("tput.megaring.")],
                key=lambda a: a["params"]["batch"])
    if mr:
        xs = [a["params"]["batch"] for a in mr]
        med = [a["rate"]["median"] / 1e6 for a in mr]
        lo = [m - a["rate"]["min"] / 1e6 for m, a in zip(med, mr)]
        hi = [a["rate"]["max"] / 1e6 - m for m, a in zip(med, mr)]
        backend = mr[0]["params"].get("backend", "")
        ax.errorbar(xs, med, yerr=[lo, hi], marker="o", capsize=4,
                    label="megaring NOP slots/s, 1 producer [%s]" % backend)
        for x, m in zip(xs, med):
            ax.annotate("%.1f" % m, (x, m), textcoords="offset points", xytext=(0, 7),
                        ha="center", fontsize=8)
    for a in arms:
        if a["name"] == "tput.timeline.b64":  # the same as batch 64, timeline mode on
            m = a["rate"]["median"] / 1e6
            ax.plot([a["params"]["batch"]], [m], marker="x", linestyle="none", color="C3",
                    label="batch 64, timeline mode on")
    styles = {"tput.launch_b2b": "--", "tput.graph_many": ":"}
    for a in arms:
        if a["name"] in styles:
            ax.axhline(a["rate"]["median"] / 1e6, linestyle=styles[a["name"]], color="gray")
            ax.text(1, a["rate"]["median"] / 1e6, " %s: %.2f M kernels/s" %
                    (a["label"], a["rate"]["median"] / 1e6), fontsize=7, va="bottom")
    if not arms:
        empty(ax, "no throughput arm ran")
    ax.set_xscale("log", base=2)
    if mr:
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
    # Log scale when the baselines are far below the ring (the GPU case).
    values = [a["rate"]["median"] / 1e6 for a in arms]
    log_y = bool(values) and min(values) > 0 and max(values) / min(values) > 20
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("slots per publish_batch (log2)")
    ax.set_ylabel("millions per second (median; bars: min..max over trials)")
    ax.set_title("throughput against batch size\n" + title_suffix(report), fontsize=9)
    ax.grid(True, alpha=0.3)
    if mr:
        ax.legend(fontsize=8, loc="lower right")
    if not log_y:
        ax.set_ylim(bottom=0)
    skipped_note(ax, report, "throughput")
    save(fig, out, "throughput")


def plot_scaling(report, out):
    scaling = sorted(ok_arms(report, "scaling"), key=lambda a: a["params"]["producers"])
    arms = [a for a in scaling if not a["params"].get("tenants")]
    tenant_arms = [a for a in scaling if a["params"].get("tenants")]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    if arms:
        xs = [a["params"]["producers"] for a in arms]
        med = [a["rate"]["median"] / 1e6 for a in arms]
        lo = [m - a["rate"]["min"] / 1e6 for m, a in zip(med, arms)]
        hi = [a["rate"]["max"] / 1e6 - m for m, a in zip(med, arms)]
        ax.errorbar(xs, med, yerr=[lo, hi], marker="o", capsize=4, color="C0",
                    label="slots/s (median, min..max)")
        ideal = [med[0] * x / xs[0] for x in xs]
        ax.plot(xs, ideal, linestyle=":", color="C0", alpha=0.5, label="linear from 1 producer")
        top = max(med)
        if tenant_arms:
            txs = [a["params"]["producers"] for a in tenant_arms]
            tmed = [a["rate"]["median"] / 1e6 for a in tenant_arms]
            ax.plot(txs, tmed, marker="D", color="C2", label="slots/s, one tenant a producer")
            top = max(top, max(tmed))
        ax.set_ylim(0, max(top * 1.3, 1e-9))
        ax.set_ylabel("millions of slots per second", color="C0")
        ax2 = ax.twinx()
        ax2.plot(xs, [a["latency"]["p50_ns"] / 1e3 for a in arms], marker="s", color="C1",
                 label="per-slot p50 (kept NOP)")
        ax2.plot(xs, [a["latency"]["p99_ns"] / 1e3 for a in arms], marker="^", color="C3",
                 label="per-slot p99 (kept NOP)")
        ax2.set_yscale("log")
        ax2.set_ylabel("latency (us, log)", color="C3")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        backend = arms[0]["params"].get("backend", "")
        batch = arms[0]["params"].get("batch", 1)
        ax.set_title("producer scaling [%s backend, batch %s]\n%s" %
                     (backend, batch, title_suffix(report)), fontsize=9)
    else:
        empty(ax, "no scaling arm ran")
    ax.set_xlabel("producer threads")
    ax.grid(True, alpha=0.3)
    save(fig, out, "scaling")


def plot_interference(report, out):
    arms = ok_arms(report, "interference")
    fig, axes = plt.subplots(1, 3, figsize=(19, 5.5))
    if arms:
        labels = ["%d blk%s\n%d ns" % (a["params"]["workers"],
                                        " x%d thr" % a["params"]["threads_per_block"]
                                        if a["params"].get("threads_per_block", 256) != 256 else "",
                                        a["params"]["poll_backoff_max_ns"])
                  + ("\n(default)" if a["params"].get("defaults") else "") for a in arms]
        measured = [a["extra"].get("slowdown_pct") for a in arms
                    if not a["extra"].get("starved") and a["extra"].get("slowdown_pct") is not None]
        # A starved setting (the GEMM made no progress) is drawn as a hatched
        # bar above every measured one.
        starved_height = max([2.5] + [1.2 * v for v in measured])
        x = list(range(len(arms)))
        for i, a in enumerate(arms):
            s = a["extra"].get("slowdown_pct")
            if a["extra"].get("starved") or s is None:
                axes[0].bar([i], [starved_height], color="none", edgecolor="black", hatch="//")
                axes[0].text(i, starved_height / 2, "STARVED", rotation=90, ha="center",
                             va="center", fontsize=9, backgroundcolor="white")
            else:
                st = a["extra"].get("slowdown_sm_target_pct")
                w = 0.4 if st is not None else 0.8
                x0 = i - 0.2 if st is not None else i
                axes[0].bar([x0], [s], width=w, color="C3" if s > 2 else "C2")
                axes[0].annotate("%+.2f%%" % s, (x0, s), textcoords="offset points",
                                 xytext=(0, 3), ha="center", fontsize=7)
                if st is not None:  # the GEMM told how many SMs are left
                    axes[0].bar([i + 0.2], [st], width=w, color="C3" if st > 2 else "C2",
                                hatch="..", edgecolor="white")
                    axes[0].annotate("%+.2f%%" % st, (i + 0.2, st), textcoords="offset points",
                                     xytext=(0, 3), ha="center", fontsize=7)
        axes[0].axhline(2, linestyle="--", color="gray")
        axes[0].text(0, 2, " target 2%", fontsize=7, va="bottom")
        axes[0].set_xticks(x)
        axes[0].set_xticklabels(labels, fontsize=7)
        axes[0].set_ylabel("GEMM slowdown beside an idle megakernel (%)\n"
                           "dotted: cublasSetSmCountTarget(SMs left)")
        axes[0].set_title("GEMM %dx%d BF16 slowdown" % (arms[0]["params"]["gemm_n"],
                                                       arms[0]["params"]["gemm_n"]))
        axes[1].bar([i - 0.2 for i in x], [a["latency"]["p50_ns"] / 1e3 for a in arms], width=0.4,
                    label="p50")
        axes[1].bar([i + 0.2 for i in x], [a["latency"]["p99_ns"] / 1e3 for a in arms], width=0.4,
                    label="p99")
        axes[1].set_xticks(x)
        axes[1].set_xticklabels(labels, fontsize=7)
        axes[1].set_yscale("log")
        axes[1].set_ylabel("wake-up round trip (us, log)")
        axes[1].set_title("wake-up latency after idle, per setting")
        axes[1].legend(fontsize=8)
        copy = [(i, a["extra"]) for i, a in enumerate(arms) if "h2d_gbps_alone" in a["extra"]]
        if copy:
            axes[2].bar([i - 0.2 for i, _ in copy], [e["h2d_gbps_alone"] for _, e in copy],
                        width=0.4, label="alone")
            axes[2].bar([i + 0.2 for i, _ in copy], [e["h2d_gbps_beside"] for _, e in copy],
                        width=0.4, label="beside the idle megakernel")
            axes[2].set_xticks(x)
            axes[2].set_xticklabels(labels, fontsize=7)
            axes[2].set_ylabel("host-to-device copy (GB/s)")
            axes[2].set_title("PCIe: pinned host-to-device copy bandwidth")
            axes[2].legend(fontsize=8)
        else:
            empty(axes[2], "no host-to-device copy measured")
        for ax in axes:
            ax.grid(True, axis="y", alpha=0.3)
    else:
        for ax in axes:
            empty(ax, "interference arm did not run")
            skipped_note(ax, report, "interference")
    fig.suptitle("interference: large GEMM beside an idle megakernel\n" + title_suffix(report),
                 fontsize=9)
    save(fig, out, "interference")


def plot_host_cost(report, out):
    arms = ok_arms(report, "host_cost")
    fig, ax = plt.subplots(figsize=(8, 5.5))
    if arms:
        ps = sorted({a["params"]["producers"] for a in arms})
        width = 0.38
        for k, (queue, color) in enumerate((("megaring", "C0"), ("moodycamel::ConcurrentQueue", "C1"))):
            xs, med, lo, hi = [], [], [], []
            for i, p in enumerate(ps):
                a = next((a for a in arms if a["params"]["producers"] == p and
                          a["params"]["queue"] == queue), None)
                if not a:
                    continue
                m = 1e9 / a["rate"]["median"]
                xs.append(i + (k - 0.5) * width)
                med.append(m)
                lo.append(m - 1e9 / a["rate"]["max"])
                hi.append(1e9 / a["rate"]["min"] - m)
            if xs:
                ax.bar(xs, med, width=width, yerr=[lo, hi], capsize=4, color=color,
                       label=queue if queue != "megaring" else "megaring CPU backend")
        ax.set_xticks(range(len(ps)))
        cons = arms[0]["params"]["consumers"]
        ax.set_xticklabels(["%d producer(s)\n%d consumers" % (p, cons) for p in ps])
        ax.set_ylabel("ns per slot, publish to completion (median; bars: spread)")
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    else:
        empty(ax, "host-cost arm did not run")
    skipped_note(ax, report, "host_cost")
    ax.set_title("host cost per slot: megaring CPU backend vs moodycamel\n" + title_suffix(report),
                 fontsize=9)
    save(fig, out, "host_cost")


def plot_fairness(report, out):
    arms = ok_arms(report, "fairness")
    fig, ax = plt.subplots(figsize=(8, 5.5))
    if not plot_ccdf(ax, arms, "light tenant's round trip, alone and beside a flooding tenant"):
        empty(ax, "fairness arm did not run")
    skipped_note(ax, report, "fairness")
    fig.suptitle("tenant fairness: the flood's outstanding-slot quota bounds the queue ahead\n" +
                 title_suffix(report), fontsize=9)
    save(fig, out, "fairness")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report")
    ap.add_argument("--out", help="output folder (default: REPORT without .json + _plots)")
    args = ap.parse_args()
    with open(args.report) as f:
        report = json.load(f)
    if report.get("schema") != "megaring-bench/1":
        print("plot.py: %s is not a megaring-bench/1 report" % args.report, file=sys.stderr)
        return 1
    out = args.out or (os.path.splitext(args.report)[0] + "_plots")
    os.makedirs(out, exist_ok=True)
    for fn in (plot_latency, plot_throughput, plot_scaling, plot_interference, plot_host_cost,
               plot_fairness):
        fn(report, out)
    print("plot.py: wrote %s/{latency,throughput,scaling,interference,host_cost,fairness}.png" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
