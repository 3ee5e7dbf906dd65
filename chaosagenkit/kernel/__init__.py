"""Kernel packet faults: real loss, delay, duplication, reordering, corruption, bandwidth limits
and black holes on the packets between the run's callers and its target.

The run creates two network namespaces and a link between them
(``topology``), runs the target inside one (``ip netns exec``) and its
callers in the other, and faults the packets on the link with nftables,
tc qdiscs or a TUN relay (``faults.mechanism_for`` says which), so agenkit
meets the kernel's own retransmissions, SYN retries and timeouts.

Pure (no system calls): ``faults``, ``topology``, ``nft``, ``tc``,
``relay_policy``, ``counters``. I/O: ``system`` (commands, namespaces),
``relay`` and ``guard`` (child processes), ``bridge`` (control APIs),
``network`` (what activities and the control call), and the Chaos Toolkit
face: ``actions`` / ``probes``. Linux and root only; elsewhere everything
refuses with one line (``system.unavailable_reason``).
"""
