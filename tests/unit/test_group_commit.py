"""The embedded profile's group commit (urne.messaging.group_commit): what goes into one
batch, with and without a linger, and that a batch's failure or a close loses no answer."""

from __future__ import annotations

import threading
import time

import pytest

from urne.messaging.group_commit import GroupCommit

pytestmark = pytest.mark.unit

ANSWER_S = 5.0  # how long a test waits for an answer: far beyond any linger below


class Recorder:
    def __init__(self, fail: bool = False):
        self.batches: list[list[int]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        with self.lock:
            self.batches.append(list(items))
        if self.fail:
            raise RuntimeError("the store is away")
        return [i * 10 for i in items]


def test_requests_within_the_linger_are_one_batch() -> None:
    run = Recorder()
    commit = GroupCommit(run, linger=1.0)
    try:
        futures = []
        for i in range(5):  # 5 requests over ~0.1 s, well inside the 1 s linger
            futures.append(commit.submit(i))
            time.sleep(0.02)
        assert [f.result(ANSWER_S) for f in futures] == [0, 10, 20, 30, 40]
    finally:
        commit.close()
    assert run.batches == [[0, 1, 2, 3, 4]]


def test_without_a_linger_a_request_alone_waits_for_nobody() -> None:
    run = Recorder()
    commit = GroupCommit(run)
    try:
        assert commit.submit(1).result(ANSWER_S) == 10
        assert commit.submit(2).result(ANSWER_S) == 20
    finally:
        commit.close()
    assert run.batches == [[1], [2]]


def test_a_full_batch_does_not_wait_out_the_linger() -> None:
    run = Recorder()
    commit = GroupCommit(run, max_batch=3, linger=600.0)  # would outlast the test
    try:
        futures = [commit.submit(i) for i in range(3)]
        assert [f.result(ANSWER_S) for f in futures] == [0, 10, 20]
    finally:
        commit.close()
    assert run.batches == [[0, 1, 2]]


def test_a_failed_batch_fails_every_request_in_it() -> None:
    commit = GroupCommit(Recorder(fail=True), linger=1.0)
    try:
        futures = [commit.submit(i) for i in range(3)]
        for f in futures:
            with pytest.raises(RuntimeError, match="store is away"):
                f.result(ANSWER_S)
    finally:
        commit.close()


def test_closing_during_a_linger_still_answers_what_was_submitted() -> None:
    run = Recorder()
    commit = GroupCommit(run, linger=600.0)
    future = commit.submit(7)
    commit.close()
    assert future.result(ANSWER_S) == 70
    assert run.batches == [[7]]
