"""JSON-lines output: the record fields, conversions, robustness and flushing."""

import enum
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sipcli.configuration import MemoryStorage, SettingsStore
from sipcli.configuration.datatypes import Password, Port, SIPAddress, SIPProxyAddress
from sipcli.jsonlines import SCHEMA_VERSION, JSONLinesWriter, format_notification, to_jsonable
from sipcli.notification import Notification, NotificationData


class Named:
    notification_id = "session/1"


class Color(enum.Enum):
    RED = "red"
    OTHER = object()


class Unprintable:
    def __str__(self):
        raise RuntimeError("no")

    def __repr__(self):
        raise RuntimeError("no")


class BadJSON:
    def __json__(self):
        raise RuntimeError("no")

    def __str__(self):
        return "bad-json"


def parse(notification: Notification) -> dict:
    line = format_notification(notification)
    assert "\n" not in line
    return json.loads(line)


def test_record_fields():
    stamp = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    record = parse(Notification("SIPSessionDidStart", Named(), NotificationData(code=200), stamp))
    assert record == {"v": SCHEMA_VERSION, "time": "2026-01-02T03:04:05.678000Z", "name": "SIPSessionDidStart",
                      "sender": "session/1", "data": {"code": 200}}


def test_sender_forms():
    assert parse(Notification("X"))["sender"] == "unknown"
    assert parse(Notification("X", "engine"))["sender"] == "engine"
    assert parse(Notification("X", FlushCounter()))["sender"] == "flushcounter"  # else: its class name


def test_conversions():
    data = NotificationData(
        when=datetime(2026, 5, 1, 12, 0, tzinfo=UTC), delay=timedelta(seconds=1.5), color=Color.RED,
        other=Color.OTHER, text_bytes=b"hello", raw_bytes=b"\xff\x00", path=Path("/tmp/x.wav"),
        address=SIPAddress("alice@example.test"), proxy=SIPProxyAddress("127.0.0.1:5070;transport=tcp"),
        nested={"list": [1, (2, 3)], "set": {"b", "a"}, 4: None}, session=Named(), nan=float("nan"),
    )
    converted = parse(Notification("X", data=data))["data"]
    assert converted["when"] == "2026-05-01T12:00:00Z"
    assert converted["delay"] == 1.5
    assert converted["color"] == "red" and converted["other"] == "OTHER"
    assert converted["text_bytes"] == "hello"
    assert converted["raw_bytes"] == {"base64": "/wA="}
    assert converted["path"] == "/tmp/x.wav"
    assert converted["address"] == "alice@example.test"
    assert converted["proxy"] == "sip:127.0.0.1:5070;transport=tcp"
    assert converted["nested"] == {"list": [1, [2, 3]], "set": ["a", "b"], "4": None}
    assert converted["session"] == "session/1"
    assert converted["nan"] == "nan"


def test_settings_objects_render_by_id_or_masked_json():
    from sipcli.account import Account, reset_singletons

    reset_singletons()
    try:
        account = Account("alice@example.test", store=SettingsStore(MemoryStorage()))
        account.auth.password = "hunter2"
        line = format_notification(Notification("X", account, NotificationData(account=account, auth=account.auth,
                                                                                 creds=account.credentials)))
        record = json.loads(line)
        assert record["sender"] == "account/alice@example.test"
        assert record["data"]["account"] == "account/alice@example.test"
        assert record["data"]["auth"] == {"username": None, "password": "***", "realm": None}
        assert record["data"]["creds"]["password"] == "***"
        assert "hunter2" not in line
    finally:
        reset_singletons()


def test_typed_setting_values_keep_their_json_type_and_passwords_are_masked():
    data = NotificationData(port=Port(5060), password=Password("hunter2"), address=SIPAddress("a@example.test"))
    line = format_notification(Notification("X", data=data))
    assert json.loads(line)["data"] == {"port": 5060, "password": "***", "address": "a@example.test"}
    assert "hunter2" not in line


def test_unknown_objects_never_crash():
    deep: list = []
    cursor = deep
    for _ in range(50):
        cursor.append([])
        cursor = cursor[0]
    data = NotificationData(weird=Unprintable(), bad=BadJSON(), obj=object(), deep=deep, fn=len)
    converted = parse(Notification("X", data=data))["data"]
    assert converted["weird"] == "<Unprintable>"
    assert converted["bad"] == "bad-json"
    assert converted["obj"].startswith("<object object")
    assert isinstance(converted["deep"], list)
    assert to_jsonable(Unprintable()) == "<Unprintable>"


def test_non_ascii_survives():
    line = format_notification(Notification("X", data=NotificationData(text="Grüße, 世界 ☎")))
    assert "Grüße, 世界 ☎" in line
    assert json.loads(line)["data"]["text"] == "Grüße, 世界 ☎"


class FlushCounter(io.StringIO):
    def __init__(self):
        super().__init__()
        self.flushes = 0

    def flush(self):
        self.flushes += 1
        super().flush()


def test_writer_one_line_per_event_flushed():
    stream = FlushCounter()
    writer = JSONLinesWriter(stream)
    for i in range(3):
        writer.handle_notification(Notification(f"N{i}", data=NotificationData(text="multi\nline")))
        assert stream.flushes == i + 1
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["N0", "N1", "N2"]
    assert stream.getvalue().endswith("\n")


def test_writer_survives_broken_pipe():
    class Broken(io.StringIO):
        def write(self, text):
            raise BrokenPipeError

    JSONLinesWriter(Broken()).handle_notification(Notification("X"))


def test_line_sink_never_blocks_drops_beyond_its_bound_and_keeps_the_summary():
    """A pipe nobody reads: write_line returns at once, lines beyond max_bytes are dropped and counted with one
    warning, and once a reader comes, it gets whole lines in order with the final line last."""
    import fcntl
    import os
    import threading
    import time

    from sipcli.jsonlines import LineSink

    read_end, write_end = os.pipe()
    fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, 4096)
    warnings = io.StringIO()
    sink = LineSink(write_end, max_bytes=20_000, warn=warnings)
    start = time.monotonic()
    for i in range(200):
        sink.write_line(json.dumps({"n": i, "pad": "x" * 990}))
    sink.write_final(json.dumps({"n": "final"}))
    assert time.monotonic() - start < 1.0  # nothing waited for the reader
    assert 150 <= sink.dropped < 200
    assert warnings.getvalue().count("\n") == 1 and "dropping" in warnings.getvalue()
    received = bytearray()

    def read() -> None:
        for chunk in iter(lambda: os.read(read_end, 65536), b""):
            received.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    assert sink.drain(5)
    os.close(write_end)
    reader.join(5)
    lines = [json.loads(line) for line in received.decode().splitlines()]
    numbers = [line["n"] for line in lines]
    assert numbers[-1] == "final" and len(numbers) == 200 - sink.dropped + 1
    assert numbers[:-1] == sorted(numbers[:-1])


def test_line_sink_reports_a_failing_stdout_once_and_stops_writing():
    import os

    from sipcli.jsonlines import LineSink

    warnings = io.StringIO()
    fd = os.open("/dev/full", os.O_WRONLY)
    sink = LineSink(fd, warn=warnings)
    for i in range(50):
        sink.write_line(f'{{"n": {i}}}')
    sink.write_final('{"n": "final"}')
    assert sink.drain(5)
    assert warnings.getvalue().count("\n") == 1 and "No space left on device" in warnings.getvalue()
    os.close(fd)
