"""Workers sharing the cameras through one Redis (DESIGN decision 8).

Every worker process (``videohub serve --workers N`` on one machine, ``--role worker`` on many)
heartbeats a record of itself (``workers.WorkerDirectory``: id, host, pid, internal address, capacity,
cameras, viewers, CPU) and owns camera streams through leases (``leases.LeaseTable``: ``SET NX PX``,
renewed every third of the TTL, fenced by a token that grows with every grant). ``placement`` says
which worker should own a stream: rendezvous hashing weighted by capacity over the live workers, so a
worker joining or leaving moves only its share. ``ownership.Ownership`` runs the loop that takes the
``always_on`` streams placed here, lets go of the ones placed elsewhere (handing them over), and drains
on SIGTERM; ``on_demand`` streams are leased on their first viewer. ``Cluster`` is what the rest of the
service sees: who is alive, who owns a stream, and whether this worker may pull it.

Redis keys (under ``vh:cluster:``): ``worker:<id>`` (JSON, expires after the heartbeat TTL),
``workers`` (sorted set of ids by last beat), ``lease:<camera>:<stream>`` (``<worker> <token>``, expires
after the lease TTL), ``fence:<camera>:<stream>`` (the token counter); channel ``events``.
"""

from videohub.cluster.node import Cluster
from videohub.cluster.workers import WorkerInfo

__all__ = ["Cluster", "WorkerInfo"]
