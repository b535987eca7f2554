"""hosts.<group>.kpis.network_receive_errors: the share of received packets that had errors,
per instance and interface (node_exporter). On by default: node-mixin's
NodeNetworkReceiveErrs (error share over 2m above 1%, for 1h). `host_network_transmit_errors`
is the same kind for sent packets."""

from __future__ import annotations

from stackgen.kpis.base import (
    ABOVE, COUNTER, DefaultKind, KpiShape, Param, capped, clamp, selector,
)
from stackgen.kpis.synth import counter, series_text
from stackgen.model import HOSTS, Series

RX_ERRS, RX_PACKETS = "node_network_receive_errs_total", "node_network_receive_packets_total"
RANGE = "2m"  # node-mixin's range (docs/node-mixin/alerts/alerts.libsonnet)
DEVICE = "eth0"  # the interface the tests and the demo drive
PACKETS = {DEVICE: 800.0, "lo": 40.0}  # packets per second of a demo host's interfaces
TEST_PACKETS = 100.0  # packets per second in the generated tests


class HostNetworkErrors(DefaultKind):
    group = HOSTS
    ratio = True
    default_for = "1h"
    defaults = {"warning": "1%"}
    alert_subject = " ({{ $labels.device }})"
    series_labels = {"device": DEVICE}
    draw = "line"

    def __init__(self, direction: str, order: int, errs: str, packets: str, alert: str):
        self.direction, self.order, self.errs, self.packets = direction, order, errs, packets
        self.kind = self.key = f"network_{direction}_errors"
        self.alert = alert
        self.incidents = {f"network-{direction}-errors": ABOVE}
        self.default_incident = f"network-{direction}-errors"

    def shape(self, m, path, d, job, window):
        rng, sel = capped(window, RANGE), selector(job)
        return KpiShape(
            title=f"Network {self.direction} errors",
            record=f"instance_device:node_network_{self.direction}_errs:ratio_rate{rng}",
            expr=f"rate({self.errs}{sel}[{rng}]) / rate({self.packets}{sel}[{rng}])",
            unit="percentunit", panel="timeseries", alert=self.alert,
            per=("instance", "device"),
            inputs=(Series(self.errs, "counter", (("device", DEVICE),)),
                    Series(self.packets, "counter", (("device", DEVICE),))),
        )

    def test_inputs(self, kpi, base, levels):
        labels = {**base, "device": DEVICE}
        return [(series_text(self.packets, labels),
                 counter([(TEST_PACKETS, n) for _, n in levels])),
                (series_text(self.errs, labels),
                 counter([(v * TEST_PACKETS, n) for v, n in levels]))]

    healthy = 0.0
    serves_always = True

    def demo_setup(self, sim, kpi):
        sim.base[self.kind] = sim.healthy(kpi, self.healthy) if kpi else self.healthy

    def demo_param(self, sim, kpi):
        return Param(self.kind, per_target=True)

    def demo_samples(self, sim, i, p, wobble, add):
        share = clamp(p(self.kind))
        for device, rate in PACKETS.items():
            packets = rate * wobble(f"packets:{device}", 0.05)
            errors = share * packets if device == DEVICE else 0.0
            add(self.packets[:-len("_total")], "counter", self.packets, {"device": device},
                COUNTER, packets)
            add(self.errs[:-len("_total")], "counter", self.errs, {"device": device},
                COUNTER, errors)


KIND = HostNetworkErrors("receive", 50, RX_ERRS, RX_PACKETS, "HostNetworkReceiveErrors")
