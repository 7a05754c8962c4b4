"""The built-in fake OpenAI-compatible server (the ``--demo`` upstream and the tests' upstream)."""

from alice_py.fake.answers import CHAT_PREFIX, COMPLETION_PREFIX, chat_answer, completion_answer, split_answer
from alice_py.fake.state import FailureKind, FakeState, RecordedRequest
from alice_py.fake.upstream import RunningFake, create_fake_upstream, start_fake_upstream

__all__ = [
    "CHAT_PREFIX",
    "COMPLETION_PREFIX",
    "FailureKind",
    "FakeState",
    "RecordedRequest",
    "RunningFake",
    "chat_answer",
    "completion_answer",
    "create_fake_upstream",
    "split_answer",
    "start_fake_upstream",
]
