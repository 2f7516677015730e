"""The registry of open connections by key prefix (``dsa110.auth.open_streams``)."""

from __future__ import annotations

import gc

from dsa110.auth.open_streams import REMEMBERED_REVOCATIONS, OpenStreams


class Stream:
    def __init__(self) -> None:
        self.ended = 0

    def end(self) -> None:
        self.ended += 1


def test_a_revocation_ends_the_keys_streams_only() -> None:
    streams = OpenStreams()
    doomed, also_doomed, other = Stream(), Stream(), Stream()
    streams.add("aaaaaaaaaaaa", doomed)
    streams.add("aaaaaaaaaaaa", also_doomed)
    streams.add("bbbbbbbbbbbb", other)
    assert streams.revoked("aaaaaaaaaaaa") == 2
    assert (doomed.ended, also_doomed.ended, other.ended) == (1, 1, 0)
    assert streams.prefixes() == ["bbbbbbbbbbbb"] and len(streams) == 1


def test_a_stream_registered_after_its_keys_revocation_is_ended_as_it_registers() -> None:
    # connection_init read the key's row before the revocation and registers after its event.
    streams = OpenStreams()
    streams.revoked("aaaaaaaaaaaa")
    late = Stream()
    streams.add("aaaaaaaaaaaa", late)
    assert late.ended == 1 and len(streams) == 0


def test_entries_go_with_their_connections() -> None:
    streams = OpenStreams()
    kept, dropped = Stream(), Stream()
    streams.add("aaaaaaaaaaaa", kept)
    streams.add("aaaaaaaaaaaa", dropped)
    streams.discard("aaaaaaaaaaaa", kept)
    assert len(streams) == 1
    del dropped  # gone without unregistering: held weakly, it does not stay
    gc.collect()
    assert len(streams) == 0
    assert streams.prefixes() == []
    streams.discard("aaaaaaaaaaaa", kept)  # unregistering twice is harmless


def test_remembered_revocations_are_bounded() -> None:
    streams = OpenStreams()
    for i in range(REMEMBERED_REVOCATIONS + 10):
        streams.revoked(f"{i:012x}")
    assert len(streams._revoked) == REMEMBERED_REVOCATIONS
    late = Stream()
    streams.add(f"{REMEMBERED_REVOCATIONS + 9:012x}", late)  # the newest are remembered
    assert late.ended == 1
