import pytest

from ssmex.datachannel import channel as channel_module
from ssmex.datachannel import message as m
from ssmex.datachannel.channel import ReliableChannel


class RecordingSocket:
    def __init__(self):
        self.frames = []

    def send(self, frame):
        self.frames.append(m.decode(frame))


def incoming(sequence_number, payload=b"x"):
    return m.decode(m.encode(m.OUTPUT_STREAM_DATA, sequence_number, m.PAYLOAD_OUTPUT, payload))


@pytest.fixture
def reliable():
    channel = ReliableChannel(outgoing_type=m.INPUT_STREAM_DATA, name="test")
    yield channel
    channel.close()


def test_accept_orders_and_drops_duplicates(reliable):
    assert reliable.accept(incoming(1)) == []
    assert reliable.accept(incoming(2)) == []

    ready = reliable.accept(incoming(0))

    assert [message.sequence_number for message in ready] == [0, 1, 2]
    assert reliable.accept(incoming(1)) == []
    assert reliable.expected_sequence_number == 3


def test_accept_full_buffer_returns_none(reliable, monkeypatch):
    monkeypatch.setattr(channel_module, "MAX_OUT_OF_ORDER", 2)

    assert reliable.accept(incoming(5)) == []
    assert reliable.accept(incoming(6)) == []
    assert reliable.accept(incoming(7)) is None
    assert reliable.accept(incoming(5)) == []


def test_send_data_splits_and_numbers(reliable):
    socket = RecordingSocket()
    reliable.attach(socket)

    reliable.send_data(m.PAYLOAD_OUTPUT, b"a" * 2500)

    assert [frame.sequence_number for frame in socket.frames] == [0, 1, 2]
    assert [len(frame.payload) for frame in socket.frames] == [1024, 1024, 452]
    assert reliable.unacked_count() == 3


def test_ack_removes_and_attach_resends(reliable):
    first = RecordingSocket()
    reliable.attach(first)
    reliable.send_data(m.PAYLOAD_OUTPUT, b"one")
    reliable.send_data(m.PAYLOAD_OUTPUT, b"two")
    reliable.handle_ack(m.decode(m.encode_ack(first.frames[0])))
    second = RecordingSocket()

    reliable.attach(second)

    assert [frame.payload for frame in second.frames] == [b"two"]
    assert second.frames[0].message_id == first.frames[1].message_id
    assert second.frames[0].created_date == first.frames[1].created_date


def acknowledge(reliable, frame):
    reliable.handle_ack(m.decode(m.encode_ack(frame)))


def reconnect_with_three_pending(reliable):
    """Send three messages, then attach a new websocket, which carries all three over."""
    first = RecordingSocket()
    reliable.attach(first)
    for payload in (b"one", b"two", b"three"):
        reliable.send_data(m.PAYLOAD_OUTPUT, payload)
    second = RecordingSocket()
    reliable.attach(second)
    return second


@pytest.mark.parametrize("skips_duplicate_acks,left", [(True, 0), (False, 3)])
def test_carried_over_forgotten_after_later_ack(reliable, skips_duplicate_acks, left):
    reliable.peer_skips_duplicate_acks = skips_duplicate_acks
    second = reconnect_with_three_pending(reliable)
    reliable.send_data(m.PAYLOAD_OUTPUT, b"four")

    acknowledge(reliable, second.frames[-1])

    assert [frame.sequence_number for frame in second.frames] == [0, 1, 2, 3]
    assert reliable.unacked_count() == left


def test_carried_over_ack_forgets_only_earlier(reliable):
    reliable.peer_skips_duplicate_acks = True
    second = reconnect_with_three_pending(reliable)

    acknowledge(reliable, second.frames[1])
    reliable.rto = -1.0

    assert reliable.unacked_count() == 1
    assert reliable.resend_expired() == 1
    assert second.frames[-1].sequence_number == 2


def test_ack_from_older_websocket_forgets_nothing(reliable):
    reliable.peer_skips_duplicate_acks = True
    first = RecordingSocket()
    reliable.attach(first)
    for payload in (b"one", b"two"):
        reliable.send_data(m.PAYLOAD_OUTPUT, payload)
    # A reconnect with no websocket yet: the messages went out only on the first one.
    reliable.attach(None)

    acknowledge(reliable, first.frames[1])

    assert reliable.unacked_count() == 1


def test_resend_expired_after_rto(reliable):
    socket = RecordingSocket()
    reliable.attach(socket)
    reliable.send_data(m.PAYLOAD_OUTPUT, b"lost")
    reliable.rto = 0.0

    assert reliable.resend_expired() == 1
    assert [frame.payload for frame in socket.frames] == [b"lost", b"lost"]


def test_rto_capped_at_one_second(reliable):
    for _ in range(50):
        reliable._update_rto(5.0)

    assert reliable.rto == channel_module.MAX_RTO
