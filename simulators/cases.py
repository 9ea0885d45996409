"""Simulator step of the data path: the discrete-event loop shared by the two case feeds.

Arrivals are drawn slot by slot; each arrival schedules its whole life cycle into one heap, and
steps leave the heap in time order once their slot is reached, so an event is never emitted
before its event_time and every case's steps come out in order.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from simulators.context import SimContext
from simulators.core import SLOT, Item

C = TypeVar("C")

# Step kinds are the contract's event kinds; ARRIVE marks an arrival still to be scheduled.
ARRIVE = ""


class CaseLoop(Generic[C]):
    """Feeds arrivals through a heap of (time, sequence, kind, case)."""

    def __init__(
        self,
        ctx: SimContext,
        arrivals: Callable[[int], Iterable[tuple[int, C]]],
        schedule: Callable[[int, C], Iterable[tuple[int, str]]],
        emit: Callable[[int, str, C], Item],
    ) -> None:
        """`arrivals(slot)` gives (time, case) pairs in [slot, slot + SLOT); `schedule(t, case)`
        gives the case's steps (time, kind) in order, all at or after t; `emit` builds one item.
        """
        self._ctx = ctx
        self._arrivals = arrivals
        self._schedule = schedule
        self._emit = emit

    def items(self) -> Iterator[Item]:
        """Items with start <= time < end, in time order."""
        ctx = self._ctx
        start, end = ctx.start, ctx.end
        heap: list[tuple[int, int, str, C]] = []
        seq = itertools.count()
        push, pop = heapq.heappush, heapq.heappop
        slot = ctx.warm_start - ctx.warm_start % SLOT
        while end is None or slot < end:
            slot_end = slot + SLOT
            for t, case in self._arrivals(slot):
                push(heap, (t, next(seq), ARRIVE, case))
            while heap and heap[0][0] < slot_end:
                t, _, kind, case = pop(heap)
                if kind == ARRIVE:
                    last = t
                    for step_t, step_kind in self._schedule(t, case):
                        # Strictly increasing times keep a case's order unambiguous downstream.
                        last = max(step_t, last)
                        if last >= start:  # warm-up steps before the start are never emitted
                            push(heap, (last, next(seq), step_kind, case))
                        last += 1
                elif t >= start and (end is None or t < end):
                    yield self._emit(t, kind, case)
            slot = slot_end
