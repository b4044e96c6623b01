"""What ``bench/run`` runs: one ``Spec`` per benchmark name, with full and ``--quick`` arguments.

A spec may run its script several times (``ttff`` with a 2 s and a 4 s GOP); every invocation's
results land in the same ``bench/results/<name>.jsonl``. ``--quick`` arguments are sized so the whole
quick run stays under five minutes on the 2-core machine; full arguments are the issues' sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Spec:
    """One benchmark: its script under bench/, the argument lists of its invocations, a timeout."""

    name: str
    script: str
    full: list[list[str]]
    quick: list[list[str]]
    timeout_s: float = 900.0
    quick_timeout_s: float = 120.0
    heavy: bool = False  # starts Chromium or many viewers: skipped by --light
    tags: list[str] = field(default_factory=list)


SPECS: list[Spec] = [
    Spec(
        # The headline comparison: videohub against Janus (as shipped and tuned) on the same camera.
        "peers",
        "peers.py",
        [["--levels", "none,0,1,10,50,100", "--rounds", "2", "--ttff-runs", "20"]],
        # Under 3 minutes: levels none,0,1,10, one round, short windows, 3 warm joins per server.
        [["--quick"]],
        timeout_s=3600,
        quick_timeout_s=240,
        heavy=True,
    ),
    Spec(
        "registry",
        "registry.py",
        [[]],
        [["--cameras", "500", "--requests", "50"]],
        timeout_s=900,
        quick_timeout_s=150,
    ),
    Spec(
        "ingest_cpu",
        "ingest_cpu.py",
        [["--cameras", "8", "--seconds", "15", "--rounds", "3"]],
        [["--cameras", "2", "--seconds", "4", "--rounds", "1", "--warmup", "2"]],
    ),
    Spec(
        "fanout_cpu",
        "fanout_cpu.py",
        [["--levels", "1,10,50,100"]],
        [["--levels", "1,10", "--window", "4", "--warmup", "2"]],
        heavy=True,
    ),
    Spec(
        "ttff",
        "ttff.py",
        [["--runs", "20", "--gop", "2"], ["--runs", "20", "--gop", "4"]],
        [["--runs", "3", "--gop", "2"], ["--runs", "3", "--gop", "4"]],
    ),
    Spec(
        "ttff_chromium",
        "ttff_chromium.py",
        [["--runs", "10", "--gop", "2"], ["--runs", "10", "--gop", "4"]],
        [["--runs", "2", "--gop", "2"]],
        heavy=True,
    ),
    Spec(
        # Issue 16: a cold camera's latest picture, and tour switches onto feeds opened early.
        "wall_chromium",
        "wall_chromium.py",
        [["--runs", "10", "--switches", "10", "--gop", "4"]],
        [["--runs", "3", "--switches", "2", "--gop", "4"]],
        quick_timeout_s=150,
        heavy=True,
    ),
    Spec("alert_latency", "alert_latency.py", [[]], [["--cameras", "1", "--rounds", "2"]]),
    Spec(
        "diagnosis_cpu",
        "diagnosis_cpu.py",
        [[]],
        [["--seconds", "6", "--cameras", "2", "--window", "6", "--rounds", "1", "--warmup", "2"]],
    ),
    Spec(
        "probe_cycle",
        "probe_cycle.py",
        [["--cameras", "10000"]],
        [["--cameras", "300"]],
        timeout_s=1200,
    ),
    Spec(
        "latency",
        "latency.py",
        # The second run: the same path at 30 fps, to show which part of the latency scales with the
        # frame interval.
        [["--viewers", "1,16,64", "--seconds", "20"], ["--viewers", "1", "--fps", "30", "--seconds", "10"]],
        [["--viewers", "1,16", "--seconds", "6"]],
        quick_timeout_s=240,
        heavy=True,
    ),
    Spec("fuzz", "fuzz.py", [["--per-operation", "25"]], [["--per-operation", "2"]], timeout_s=1800),
    Spec(
        "soak",
        "soak.py",
        [["--minutes", "60"]],
        # bench/soak.py --quick is the 5-minute variant; inside `bench/run --quick` one minute keeps the
        # whole quick run short.
        [["--minutes", "1", "--every", "20", "--viewers", "16", "--ws", "40"]],
        timeout_s=4500,
        quick_timeout_s=240,
        heavy=True,
    ),
    Spec(
        # Redis Sentinel failover under a real service (issue 14): kill -9 of the primary to the first
        # acknowledged API write, and the cost of WAIT 1 on a transaction.
        "sentinel",
        "sentinel.py",
        [["--kills", "5"]],
        [["--quick"]],
        timeout_s=900,
        quick_timeout_s=150,
    ),
    Spec(
        # Failover (issue 14): kill -9 of a camera's owner → first frame decoded from the new owner,
        # and the picture gap of a SIGTERM hand-over, at a viewer that follows the owner.
        "cluster",
        "cluster.py",
        [["--only", "failover,handover", "--kills", "10"]],
        [["--only", "failover,handover", "--kills", "2"]],
        timeout_s=1200,
        quick_timeout_s=300,
    ),
    Spec(
        # Scale-out (issue 14): viewers at >= 90 % of the camera's frames with 1 worker and with
        # --workers 2, the same cameras and viewers.
        "cluster_capacity",
        "cluster.py",
        # 720p 25 fps viewers cost ~0.3 % of a core each (fanout_cpu); the viewer processes and the
        # simulator share the same 2 cores, which fill first (machine 97-100 % busy at 150-200 viewers).
        [["--only", "capacity", "--levels", "25,50,75,100,150,200", "--window", "8"]],
        [["--only", "capacity", "--quick"]],
        timeout_s=1800,
        quick_timeout_s=240,
        heavy=True,
    ),
    Spec(
        "steady",
        "steady.py",
        [["--cameras", "16", "--viewers", "32", "--minutes", "10"]],
        [["--cameras", "2", "--viewers", "4", "--minutes", "0.5", "--every", "5"]],
        timeout_s=1200,
        heavy=True,
    ),
]

BY_NAME = {spec.name: spec for spec in SPECS}
