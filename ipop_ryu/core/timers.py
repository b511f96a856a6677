"""Periodic jobs on the core's clock, and rate limits (budgets) for what must not burst."""


class Every:
    """Due once per interval; the first time at `first` (default: at once)."""

    def __init__(self, interval: float, first: float = 0.0):
        self.interval = interval
        self.next = first

    def due(self, now: float) -> bool:
        if now < self.next:
            return False
        self.next = now + self.interval
        return True

    def soon(self, now: float):
        """Make the job due at the next check."""
        self.next = now


class Budget:
    """A token bucket: rate tokens per second, at most `burst` saved up."""

    def __init__(self, rate: float, now: float, burst: float = None):
        self.rate = rate
        self.burst = rate if burst is None else burst
        self.tokens = float(self.burst)
        self._at = now

    def refill(self, now: float):
        self.tokens = min(self.burst, self.tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, now: float, n: float = 1.0) -> bool:
        self.refill(now)
        if self.tokens < n:
            return False
        self.tokens -= n
        return True
