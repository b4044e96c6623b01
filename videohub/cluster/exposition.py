"""The workers' ``/metrics`` as one scrape: a ``worker`` label on every sample, and families merged.

Each worker renders its own metrics with ``Labelled`` around its collectors (every sample gets
``worker="<id>"``, so two workers' series never collide); the node scraped adds every other live
worker's exposition (``Router.gather``) with ``merged``: samples of one family from every worker go
under one HELP/TYPE header, as the Prometheus text format requires (a second TYPE line for a name is
a parse error). ``videohub_worker_up`` says which workers answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

WORKER_LABEL = "worker"


class Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


def _labelled(metric: Metric, worker: str) -> Metric:
    copy = Metric(metric.name, metric.documentation, metric.type, metric.unit)
    copy.samples = [s._replace(labels={**s.labels, WORKER_LABEL: worker}) for s in metric.samples]
    return copy


class Labelled:
    """Collects ``collectors`` and puts ``worker="<id>"`` on each of their samples."""

    def __init__(self, worker: str, collectors: Iterable[Collector]) -> None:
        self.worker = worker
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            for metric in collector.collect():
                yield _labelled(metric, self.worker)


class Merged:
    """Families of several expositions, one header per family name, samples in worker order."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families: dict[str, Metric] = {}
        for family in families:
            self.add(family)

    def add(self, family: Metric) -> None:
        kept = self.families.get(family.name)
        if kept is None:
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            self.families[family.name] = kept
        kept.samples.extend(family.samples)

    def add_text(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            self.add(family)

    def collect(self) -> Iterator[Metric]:
        yield from self.families.values()


def worker_up(answered: Iterable[str], missing: Iterable[str]) -> Metric:
    up = GaugeMetricFamily(
        "videohub_worker_up", "1 when the worker answered this scrape", labels=[WORKER_LABEL]
    )
    for worker in sorted(answered):
        up.add_metric([worker], 1.0)
    for worker in sorted(missing):
        up.add_metric([worker], 0.0)
    return up
