"""The autoscaling demo's picture: replicas, nodes and CPU over time, load steps shaded."""

from collections.abc import Sequence
from pathlib import Path

from tools.autoscale.samples import Sample

# --- the picture --------------------------------------------------------------------------------


def phase_spans(samples: Sequence[Sample]) -> list[tuple[float, float, int]]:
    """(start, end, users) of each load step seen in the samples, back to back."""
    starts = [
        (s.elapsed_s, s.users)
        for i, s in enumerate(samples)
        if s.phase >= 0 and (i == 0 or samples[i - 1].phase != s.phase)
    ]
    after = [s.elapsed_s for s in samples if s.phase < 0]
    end = after[0] if after else samples[-1].elapsed_s if samples else 0.0
    ends = [start for start, _ in starts[1:]] + [end]
    return [(start, stop, users) for (start, users), stop in zip(starts, ends, strict=True)]


def plot(samples: Sequence[Sample], png: Path, title: str) -> None:
    """Replicas and Ready nodes (top), CPU utilisation (bottom) over time, load steps shaded.

    Nodes are drawn when the samples have them (CSVs recorded before they were counted do not).
    """
    import matplotlib  # noqa: PLC0415 - only the plot needs it, and Agg must be chosen first

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    if not samples:
        raise ValueError("no samples to plot")
    minutes = max(s.elapsed_s for s in samples) > 180
    scale, unit = (60.0, "min") if minutes else (1.0, "s")
    t = [s.elapsed_s / scale for s in samples]
    fig, (ax_rep, ax_cpu) = plt.subplots(
        2, 1, sharex=True, figsize=(11, 6.5), height_ratios=[1.1, 1], layout="constrained"
    )
    spans = phase_spans(samples)
    peak_users = max((u for _, _, u in spans), default=0) or 1
    for start, end, users in spans:
        for ax in (ax_rep, ax_cpu):
            ax.axvspan(
                start / scale,
                end / scale,
                color="#f2a93b",
                alpha=0.08 + 0.3 * users / peak_users,
                lw=0,
            )
        ax_rep.annotate(
            f"{users} users" if users else "no load",
            xy=((start + end) / 2 / scale, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, -12),
            textcoords="offset points",
            ha="center",
            fontsize=9,
            color="#7a4a00",
        )

    ready = [s.ready_pods for s in samples]
    ax_rep.fill_between(
        t, ready, step="post", color="#2e9e5b", alpha=0.15, lw=0, label="pods ready"
    )
    ax_rep.step(
        t,
        [s.desired_replicas for s in samples],
        where="post",
        ls="--",
        lw=1.6,
        color="#555555",
        label="desired (HPA)",
    )
    ax_rep.step(
        t,
        [s.current_replicas for s in samples],
        where="post",
        lw=2.4,
        color="#1f5fa8",
        label="current replicas",
    )
    node_samples = [(ti, s.nodes) for ti, s in zip(t, samples, strict=True) if s.nodes is not None]
    if node_samples:
        # Beside the pods: on a node autoscaler (EKS) pods wait for nodes; on a laptop it is flat.
        ax_rep.step(
            [ti for ti, _ in node_samples],
            [n for _, n in node_samples],
            where="post",
            ls="-.",
            lw=1.8,
            color="#7b3fa0",
            label="nodes ready",
        )
    for limit in sorted({s.max_replicas for s in samples}):
        ax_rep.axhline(limit, ls=":", lw=1.2, color="#1f5fa8")
        ax_rep.annotate(
            f"maxReplicas {limit}",
            xy=(1.0, limit),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
            fontsize=9,
            color="#1f5fa8",
        )
    top = max(
        max(s.desired_replicas, s.current_replicas, s.pods, s.max_replicas, s.nodes or 0)
        for s in samples
    )
    ax_rep.set_ylim(0, top + 1.2)
    ax_rep.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_rep.set_ylabel("replicas")

    cpu_t = [ti for ti, s in zip(t, samples, strict=True) if s.cpu_percent is not None]
    cpu = [s.cpu_percent for s in samples if s.cpu_percent is not None]
    # The HPA refreshes its metric every 15 s: draw it as the steps it is.
    ax_cpu.plot(
        cpu_t,
        cpu,
        lw=2,
        color="#c2410c",
        drawstyle="steps-post",
        label="CPU (% of request, pod average)",
    )
    targets = {s.target_cpu_percent for s in samples if s.target_cpu_percent is not None}
    for target in sorted(targets):
        ax_cpu.axhline(target, ls="--", lw=1.4, color="#444444")
        ax_cpu.annotate(
            f"HPA target {target}%",
            xy=(1.0, target),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
            fontsize=9,
        )
    ax_cpu.set_ylim(0, max([*cpu, *targets, 10]) * 1.15)
    ax_cpu.set_ylabel("CPU utilisation (%)")
    ax_cpu.set_xlabel(f"time ({unit})")
    ax_cpu.set_xlim(t[0], t[-1])
    for ax in (ax_rep, ax_cpu):
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(title, fontsize=12)
    handles = [h for ax in (ax_rep, ax_cpu) for h in ax.get_legend_handles_labels()[0]]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False
    )
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
