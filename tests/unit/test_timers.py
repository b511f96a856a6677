"""Periodic jobs and budgets on the core's clock."""
from ipop_ryu.core.timers import Budget, Every


def test_every_is_due_once_per_interval_and_can_be_hurried():
    job = Every(2.0, first=10.0)
    assert [t for t in (9.9, 10.0, 10.5, 11.9, 12.0, 12.1) if job.due(t)] == [10.0, 12.0]
    job.soon(12.5)
    assert job.due(12.5) and not job.due(12.6)


def test_budget_refills_at_its_rate_and_caps_savings():
    budget = Budget(rate=10, now=0.0, burst=5)
    assert sum(budget.take(0.0) for _ in range(20)) == 5          # the burst
    assert sum(budget.take(0.5) for _ in range(20)) == 5          # 0.5 s * 10/s, capped
    assert sum(budget.take(0.75) for _ in range(20)) == 2         # 2.5 tokens saved
