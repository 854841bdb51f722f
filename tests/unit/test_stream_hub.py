"""The hub closes exactly the streams of what was revoked, and makes a stream that may
have missed a revocation authenticate again."""

from __future__ import annotations

from server.realtime.hub import RoomHub, StreamOwner

ALICE_LAPTOP = StreamOwner(token_hash=b"t1", device_id="laptop")
ALICE_LAPTOP_AGAIN = StreamOwner(token_hash=b"t2", device_id="laptop")
ALICE_PHONE = StreamOwner(token_hash=b"t3", device_id="phone")


def test_closing_a_token_revokes_only_the_streams_it_opened() -> None:
    hub = RoomHub()
    with (
        hub.subscribe("r1", ALICE_LAPTOP) as first,
        hub.subscribe("r2", ALICE_LAPTOP) as second,
        hub.subscribe("r1", ALICE_LAPTOP_AGAIN) as other,
    ):
        assert hub.close_token(b"t1") == 2

        assert first.revoked_reason == second.revoked_reason == "the token was revoked"
        assert first.attention.is_set()
        assert second.attention.is_set()
        assert other.revoked_reason is None
        assert not other.attention.is_set()


def test_closing_a_device_revokes_every_token_of_that_device() -> None:
    hub = RoomHub()
    with (
        hub.subscribe("r1", ALICE_LAPTOP) as first,
        hub.subscribe("r1", ALICE_LAPTOP_AGAIN) as second,
        hub.subscribe("r1", ALICE_PHONE) as phone,
    ):
        assert hub.close_device("laptop") == 2

        assert first.revoked_reason == second.revoked_reason == "the device was revoked"
        assert phone.revoked_reason is None


def test_a_stream_that_has_ended_is_forgotten() -> None:
    hub = RoomHub()
    with hub.subscribe("r1", ALICE_LAPTOP):
        pass

    assert hub.close_token(b"t1") == 0
    assert hub.close_device("laptop") == 0


def test_a_stream_authenticated_before_a_revocation_it_did_not_see_is_rechecked() -> None:
    hub = RoomHub()
    epoch = hub.epoch  # read before the token was checked
    hub.close_device("phone")  # lands while the check runs

    with (
        hub.subscribe("r1", ALICE_LAPTOP, epoch=epoch) as late,
        hub.subscribe("r1", ALICE_PHONE, epoch=hub.epoch) as current,
    ):
        assert late.attention.is_set()
        assert late.revoked_reason is None
        assert not current.attention.is_set()


def test_after_a_gap_in_notifications_every_stream_is_rechecked() -> None:
    hub = RoomHub()
    with hub.subscribe("r1", ALICE_LAPTOP) as first, hub.subscribe("r2", ALICE_PHONE) as second:
        hub.recheck_all()

        assert first.attention.is_set()
        assert second.attention.is_set()
        assert first.revoked_reason is None
        assert second.revoked_reason is None
