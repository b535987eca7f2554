"""hosts.<group>.kpis.network_transmit_errors: the share of sent packets that had errors, per
instance and interface (node_exporter). On by default: node-mixin's NodeNetworkTransmitErrs
(error share over 2m above 1%, for 1h); the kind is `host_network_errors`'s."""

from __future__ import annotations

from stackgen.kpis.host_network_errors import HostNetworkErrors

TX_ERRS, TX_PACKETS = "node_network_transmit_errs_total", "node_network_transmit_packets_total"

class HostNetworkTransmitErrors(HostNetworkErrors):
    """The receive kind's twin for sent packets (its own class: one kind per module)."""


KIND = HostNetworkTransmitErrors("transmit", 51, TX_ERRS, TX_PACKETS, "HostNetworkTransmitErrors")
