"""Free ports picked together never collide."""

from __future__ import annotations

from services.runtime.ports import FreePorts


def test_a_picker_never_hands_out_the_same_port_twice() -> None:
    # The kernel recycles a closed probe's port; 500 picks in a row see a repeat almost
    # surely, which once made a stack with every port at 0 refuse "port set twice".
    picker = FreePorts()
    ports = [picker.pick() for _ in range(500)]
    assert len(set(ports)) == len(ports)
