"""The key pool: rotation, disabling, cooldown (with an injected clock), add/remove, masking."""

from __future__ import annotations

import pytest

from alice_py.upstream.errors import (
    InvalidKeyError,
    NoAvailableKeysError,
    QuotaExceededError,
    UpstreamConnectionError,
    UpstreamRateLimitError,
    UpstreamRequestError,
    UpstreamServerError,
)
from alice_py.upstream.keypool import KeyPool, mask_key

from .conftest import Clock

A, B, C = "sk-aaaaaaaaaaaaaaaa1111", "sk-bbbbbbbbbbbbbbbb2222", "sk-cccccccccccccccc3333"


def states(pool: KeyPool) -> list[str]:
    return [s.state for s in pool.snapshot()]


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        ("sk-proj-abcdefghijklmnopqrstuvwx1234", "sk-…1234"),
        ("sk-abcdefghijklmnop9876", "sk-…9876"),
        ("0123456789abcdef0123456789abcdef", "…cdef"),
        ("sk-short", "…hort"),  # short keys show their last four too, but never more than half
        ("abcde", "…de"),
        ("abc", "…c"),
        ("x", "…"),
        ("", "…"),
    ],
)
def test_mask_key(key: str, masked: str) -> None:
    assert mask_key(key) == masked


def test_round_robin_order() -> None:
    pool = KeyPool([A, B, C], auto_remove=True)
    assert [pool.acquire() for _ in range(7)] == [A, B, C, A, B, C, A]


def test_invalid_key_is_disabled_and_skipped(clock: Clock) -> None:
    pool = KeyPool([A, B], auto_remove=True, clock=clock)
    pool.report_failure(A, InvalidKeyError("Incorrect API key provided", upstream_status=401))
    assert [pool.acquire() for _ in range(3)] == [B, B, B]
    state = pool.snapshot()[0]
    assert (state.masked, state.state, state.disabled_reason) == ("sk-…1111", "disabled", "invalid key")
    assert state.last_error == "Incorrect API key provided"
    assert pool.usable_count() == 1 and len(pool) == 2


def test_quota_exceeded_key_is_disabled() -> None:
    pool = KeyPool([A, B], auto_remove=True)
    pool.report_failure(B, QuotaExceededError("You exceeded your current quota", upstream_status=429))
    assert states(pool) == ["active", "disabled"]
    assert pool.snapshot()[1].disabled_reason == "quota exceeded"


def test_without_auto_remove_invalid_key_only_cools_down(clock: Clock) -> None:
    pool = KeyPool([A, B], auto_remove=False, clock=clock)
    pool.report_failure(A, InvalidKeyError("bad"))
    assert states(pool) == ["cooling", "active"]
    clock.advance(1.0)
    assert states(pool) == ["active", "active"]


def test_rate_limit_cools_down_for_retry_after(clock: Clock) -> None:
    pool = KeyPool([A, B], auto_remove=True, clock=clock)
    pool.report_failure(A, UpstreamRateLimitError("slow down", retry_after=7.0))
    state = pool.snapshot()[0]
    assert state.state == "cooling"
    assert state.cooldown_until == clock.now + 7.0 and state.cooldown_remaining == 7.0
    assert [pool.acquire() for _ in range(3)] == [B, B, B]
    clock.advance(6.9)
    assert pool.acquire() == B
    clock.advance(0.1)
    assert states(pool) == ["active", "active"]
    assert pool.acquire() == A


def test_server_errors_back_off_exponentially_capped_and_reset_on_success(clock: Clock) -> None:
    pool = KeyPool([A], auto_remove=True, clock=clock, fail_threshold=100)
    cooldowns = []
    for _ in range(8):
        pool.report_failure(A, UpstreamServerError("oops", upstream_status=500))
        cooldowns.append(pool.snapshot()[0].cooldown_remaining)
    assert cooldowns == [1, 2, 4, 8, 16, 32, 60, 60]
    pool.report_success(A)
    assert states(pool) == ["active"]
    pool.report_failure(A, UpstreamServerError("oops"))
    assert pool.snapshot()[0].cooldown_remaining == 1


def test_cooling_keys_are_not_handed_out_and_ready_at_names_the_first_back(clock: Clock) -> None:
    pool = KeyPool([A, B, C], auto_remove=True, clock=clock)
    pool.report_failure(A, UpstreamRateLimitError("x", retry_after=30))
    pool.report_failure(B, UpstreamRateLimitError("x", retry_after=5))
    pool.report_failure(C, InvalidKeyError("x"))
    with pytest.raises(NoAvailableKeysError):
        pool.acquire()
    assert pool.ready_at() == clock() + 5  # B is back first
    assert pool.ready_at(exclude=(B,)) == clock() + 30
    assert pool.usable_count() == 2
    clock.advance(5)
    assert pool.acquire() == B


def test_no_usable_key_raises_no_available_keys() -> None:
    pool = KeyPool([A, B], auto_remove=True)
    pool.report_failure(A, InvalidKeyError("x"))
    pool.report_failure(B, QuotaExceededError("y"))
    with pytest.raises(NoAvailableKeysError) as caught:
        pool.acquire()
    assert caught.value.message == "No available API keys" and caught.value.status == 503
    with pytest.raises(NoAvailableKeysError):
        KeyPool([], auto_remove=True).acquire()


def test_a_request_refused_for_itself_never_counts_against_the_key() -> None:
    pool = KeyPool([A], auto_remove=True, fail_threshold=1)
    pool.report_failure(A, UpstreamRequestError("Unknown model", upstream_status=400))
    state = pool.snapshot()[0]
    assert (state.state, state.failures, state.last_error) == ("active", 0, None)


def test_a_connection_failure_cools_the_key_briefly(clock: Clock) -> None:
    pool = KeyPool([A], auto_remove=True, clock=clock)
    pool.report_failure(A, UpstreamConnectionError("connection refused"))
    state = pool.snapshot()[0]
    assert (state.state, state.failures, state.last_error) == ("cooling", 1, "connection refused")
    assert state.cooldown_remaining == 1.0


def test_counts_requests_and_failures() -> None:
    pool = KeyPool([A, B], auto_remove=True)
    for _ in range(5):
        pool.acquire()
    pool.report_failure(A, UpstreamServerError("x"))
    assert [(s.requests, s.failures) for s in pool.snapshot()] == [(3, 1), (2, 0)]


def test_exclude_skips_a_key() -> None:
    pool = KeyPool([A, B], auto_remove=True)
    assert pool.acquire(exclude=(A,)) == B
    assert pool.acquire(exclude=(A,)) == B
    with pytest.raises(NoAvailableKeysError):
        KeyPool([A], auto_remove=True).acquire(exclude=(A,))


def test_add_strips_and_skips_duplicates_and_blanks() -> None:
    pool = KeyPool([A], auto_remove=True)
    assert pool.add([f" {B}\n", A, "", "  ", B]) == [B]
    assert pool.keys() == [A, B]


def test_remove_returns_removed_and_rotation_continues() -> None:
    pool = KeyPool([A, B, C], auto_remove=True)
    assert pool.acquire() == A
    assert pool.acquire() == B
    assert pool.remove([A, "sk-not-in-the-pool-0000"]) == [A]
    assert [pool.acquire() for _ in range(3)] == [C, B, C]
    assert len(pool) == 2


def test_failure_reported_for_a_removed_key_is_ignored() -> None:
    pool = KeyPool([A], auto_remove=True)
    pool.remove([A])
    pool.report_failure(A, InvalidKeyError("x"))
    pool.report_success(A)
    assert pool.snapshot() == []


def test_keys_never_shown_in_repr_or_snapshot() -> None:
    pool = KeyPool([A, B], auto_remove=True)
    pool.report_failure(A, InvalidKeyError("x"))
    shown = repr(pool) + repr(pool.snapshot())
    assert A not in shown and B not in shown
    assert "sk-…1111" in shown
