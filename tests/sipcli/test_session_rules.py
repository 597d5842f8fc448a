"""Session's rules in-process, with the pjsua driver replaced by a fake: the test plays the engine's side.

The fake records the commands the Session sends; the test feeds the events pjsua would report (as h11's tests
drive a Connection pair) and checks states, notifications and commands.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from sipcli.notification import NotificationCenter
from sipcli.pjsua.call import (
    Answer,
    AnswerProposal,
    Hangup,
    Hold,
    MakeCall,
    SendDTMF,
    Unhold,
)
from sipcli.pjsua.events import (
    AudioInfo,
    CallStateChanged,
    DTMFReceived,
    InfoResponse,
    MediaChanged,
    MediaFailed,
    RemoteProposal,
)
from sipcli.session import IllegalStateError, Session, SessionManager
from sipcli.sessionstate import STATES, TRANSITIONS
from sipcli.uri import Route

AUDIO = AudioInfo("PCMU", 8000, False, "127.0.0.1", 4000, "127.0.0.1", 5000)
INVITE = ("INVITE sip:bob@127.0.0.1 SIP/2.0\r\nFrom: <sip:alice@example.test>;tag=1\r\nTo: <sip:bob@example.test>\r\n"
          "User-Agent: peer/1\r\nContent-Type: application/sdp\r\n\r\n"
          "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n")


class _Account:
    id = "alice@example.test"
    pj_account = None


@dataclass
class FakeDriver:
    """Stands in for sipcli.pjsua.call.CallDriver: commands are recorded and succeed (or fail, when told)."""

    hooks: Any
    on_event: Any
    commands: list = field(default_factory=list)
    failing: set = field(default_factory=set)
    released: bool = False

    def send(self, command: Any) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if type(command) in self.failing:
            future.set_exception(RuntimeError(f"{type(command).__name__} failed"))
        else:
            self.commands.append(command)
            future.set_result(None)
        return future

    def release(self) -> None:
        self.released = True

    def attach(self, hooks: Any, on_event: Any) -> None:
        self.hooks, self.on_event = hooks, on_event

    def post(self, event: Any) -> None:  # the real one hands it to the loop thread
        self.on_event(event)


class Observer:
    def __init__(self, session: Session) -> None:
        self.notifications: list[tuple[str, dict]] = []
        NotificationCenter().add_observer(self, sender=session)

    def handle_notification(self, notification: Any) -> None:
        data = {k: v for k, v in vars(notification.data).items() if k != "timestamp"}
        self.notifications.append((notification.name, data))

    def names(self) -> list[str]:
        return [name for name, _ in self.notifications]

    def states(self) -> list[str]:
        return [data["state"] for name, data in self.notifications if name == "SIPSessionChangedState"]

    def data(self, name: str) -> dict:
        return next(data for found, data in self.notifications if found == name)


@pytest.fixture
def fake_driver(monkeypatch):
    drivers: list[FakeDriver] = []

    def factory(hooks: Any, on_event: Any) -> FakeDriver:
        drivers.append(FakeDriver(hooks, on_event))
        return drivers[-1]

    monkeypatch.setattr(Session, "driver_factory", staticmethod(factory))
    yield drivers
    SessionManager()._sessions.clear()


def call_state(state: str, code: int = 0, reason: str = "", remote_response: bool = False,
               message: str = "") -> CallStateChanged:
    return CallStateChanged(state, code, reason, "<sip:alice@example.test>", "<sip:bob@example.test>",
                            remote_response, message)


def run(scenario):
    asyncio.run(asyncio.wait_for(scenario(), 10))


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def established_outgoing(fake_driver) -> tuple[Session, FakeDriver, Observer]:
    session = Session(_Account())
    observer = Observer(session)
    await session.connect("sip:bob@example.test")
    driver = fake_driver[-1]
    for event in (call_state("CALLING"), call_state("EARLY", 180, "Ringing", True), call_state("CONNECTING", 200),
                  MediaChanged(AUDIO, None), call_state("CONFIRMED", 200, "OK")):
        driver.on_event(event)
    return session, driver, observer


def test_the_transition_table_is_closed():
    assert set(TRANSITIONS) == set(STATES)
    assert all(target in STATES for moves in TRANSITIONS.values() for target in moves.values())
    assert TRANSITIONS["TERMINATED"] == {}
    assert all(moves.get("finish") == "TERMINATED" for state, moves in TRANSITIONS.items() if state != "TERMINATED")


def test_outgoing_call_start_to_remote_hangup(fake_driver):
    async def scenario():
        session, driver, observer = await established_outgoing(fake_driver)
        assert driver.commands[0] == MakeCall(session.account, "sip:bob@example.test", None, False)
        assert session.state == "ESTABLISHED" and session.audio_codec == "PCMU" and session.has_audio
        assert observer.names()[:6] == ["SIPSessionNewOutgoing", "SIPSessionChangedState",
                                        "SIPSessionGotRingIndication", "SIPSessionWillStart",
                                        "SIPSessionChangedState", "SIPSessionDidStart"]
        # the negotiated audio is in DidStart's data (issue 10 item 4; the text view's "answered: PCMU 8 kHz, SRTP
        # off", issue 8 item 7)
        assert observer.data("SIPSessionDidStart") == {"streams": ["audio"], "audio_codec": "PCMU",
                                                       "audio_sample_rate": 8000, "audio_srtp_active": False}
        driver.on_event(call_state("DISCONNECTED", 200, "Normal call clearing", True))
        assert session.state == "TERMINATED" and driver.released
        assert observer.states() == ["CALLING", "ESTABLISHED", "TERMINATING", "TERMINATED"]
        assert observer.names()[-3:] == ["SIPSessionChangedState", "SIPSessionChangedState", "SIPSessionDidEnd"]
        # the reference sends WillEnd only before ending "at the request of the application"
        assert "SIPSessionWillEnd" not in observer.names() and "SIPSessionDidFail" not in observer.names()
        assert observer.data("SIPSessionDidEnd") == {"originator": "remote"}

    run(scenario)


def test_session_manager_sessions_is_a_copy_of_the_active_sessions(fake_driver):
    async def scenario():
        manager = SessionManager()
        session, driver, _ = await established_outgoing(fake_driver)
        idle = Session(_Account())  # NULL: not active
        sessions = manager.sessions
        assert sessions == [session] and idle not in sessions
        sessions.clear()
        assert manager.sessions == [session]  # the caller's copy, not the manager's list
        driver.on_event(call_state("DISCONNECTED", 200, "Normal call clearing", True))
        assert manager.sessions == []

    run(scenario)


@pytest.mark.parametrize(("code", "remote_response", "originator"), [(486, True, "remote"), (408, False, "local"),
                                                                     (503, False, "local")])
def test_failure_before_the_answer_says_who_failed(fake_driver, code, remote_response, originator):
    async def scenario():
        session = Session(_Account())
        observer = Observer(session)
        await session.connect("sip:bob@example.test")
        fake_driver[-1].on_event(call_state("DISCONNECTED", code, "Busy Here", remote_response))
        assert observer.data("SIPSessionDidFail") == {"originator": originator, "code": code, "reason": "Busy Here"}
        assert observer.data("SIPSessionDidEnd") == {"originator": originator}
        assert observer.states() == ["CALLING", "TERMINATED"]

    run(scenario)


def test_a_call_that_cannot_be_made_fails_locally(fake_driver, monkeypatch):
    async def scenario():
        session = Session(_Account())
        observer = Observer(session)
        original = Session.driver_factory

        def failing(hooks, on_event):
            driver = original(hooks, on_event)
            driver.failing.add(MakeCall)
            return driver

        monkeypatch.setattr(Session, "driver_factory", staticmethod(failing))
        with pytest.raises(RuntimeError):
            await session.connect("sip:bob@example.test")
        await settle()
        assert observer.data("SIPSessionDidFail") == {"originator": "local", "code": 0, "reason": "MakeCall failed"}
        assert session.state == "TERMINATED"

    run(scenario)


def test_cancel_while_calling_and_bye_when_established(fake_driver):
    async def scenario():
        calling = Session(_Account())
        await calling.connect("sip:bob@example.test")
        await calling.end()
        assert calling.state == "TERMINATING" and fake_driver[-1].commands[-1] == Hangup(cancel=True)
        session, driver, _ = await established_outgoing(fake_driver)
        await session.end()
        assert driver.commands[-1] == Hangup(cancel=False)
        driver.on_event(call_state("DISCONNECTED", 200, "OK", True))
        assert session.state == "TERMINATED"
        with pytest.raises(IllegalStateError):
            session.hold()

    run(scenario)


def test_incoming_ring_accept_and_the_caller_giving_up(fake_driver):
    async def scenario():
        manager = SessionManager()
        manager._started = True
        try:
            drivers = []
            for _ in range(2):
                driver = FakeDriver(None, None)
                assert manager._incoming_call(_Account(), driver, INVITE) == 180  # ring
                drivers.append(driver)
            await settle()
            first, second = manager.sessions[-2:]
            assert first.state == second.state == "INCOMING" and first.proposed_streams == ["audio"]
            assert first.remote_user_agent == "peer/1" and str(first.remote_uri) == "sip:alice@example.test"
            observer = Observer(second)
            await first.accept()
            assert first.state == "ACCEPTING" and drivers[0].commands == [Answer(200)]
            drivers[1].on_event(call_state("DISCONNECTED", 487, "Request Terminated", True))
            assert observer.data("SIPSessionDidFail") == {"originator": "remote", "code": 487,
                                                          "reason": "Request Terminated"}
            assert second.state == "TERMINATED" and drivers[1].released
            await first.end()
            assert first.state == "TERMINATING" and drivers[0].commands[-1] == Hangup(cancel=False)
        finally:
            manager._started = False

    run(scenario)


def test_hold_and_unhold_both_ways(fake_driver):
    async def scenario():
        session, driver, observer = await established_outgoing(fake_driver)
        await session.hold()
        assert driver.commands[-1] == Hold()
        driver.on_event(MediaChanged(AUDIO, "local"))
        assert session.on_hold_by_local and session.on_hold
        await session.unhold()
        assert driver.commands[-1] == Unhold()
        driver.on_event(MediaChanged(AUDIO, None))
        driver.on_event(MediaChanged(AUDIO, "remote"))
        driver.on_event(MediaChanged(AUDIO, None))
        holds = [(name, data["originator"]) for name, data in observer.notifications if "hold" in name.lower()]
        assert holds == [("SIPSessionGotHoldRequest", "local"), ("SIPSessionGotUnholdRequest", "local"),
                         ("SIPSessionGotHoldRequest", "remote"), ("SIPSessionGotUnholdRequest", "remote")]
        assert "SIPSessionGotStreamUpdate" not in observer.names()  # a hold is no stream change
        await session.send_dtmf("5")
        assert driver.commands[-1] == SendDTMF("5", "rfc2833")
        driver.on_event(DTMFReceived("7", "info"))
        assert observer.data("SIPSessionGotDTMF") == {"digit": "7", "method": "info"}
        await session.end()

    run(scenario)


def test_audio_dead_after_a_reinvite_fails_the_session_and_hangs_up(fake_driver):
    async def scenario():
        session, driver, observer = await established_outgoing(fake_driver)
        audio = session.audio
        stream = Observer(audio)
        await session.hold()
        driver.on_event(MediaFailed("the answer's crypto tag 7 was not offered"))
        await settle()
        assert stream.notifications == [("MediaStreamDidFail", {"reason": "the answer's crypto tag 7 was not offered"})]
        assert audio.notification_id == f"{session.notification_id}/audio" and not session.has_audio
        assert observer.data("SIPSessionDidFail") == {"originator": "local", "code": 0,
                                                      "reason": "the answer's crypto tag 7 was not offered"}
        assert driver.commands[-1] == Hangup(cancel=False) and session.state == "TERMINATING"
        assert "SIPSessionGotHoldRequest" not in observer.names()
        driver.on_event(call_state("DISCONNECTED", 200, "Normal call clearing"))
        assert observer.names()[-1] == "SIPSessionDidEnd" and observer.data("SIPSessionDidEnd") == {
            "originator": "local"}
        driver.on_event(MediaFailed("late"))  # nothing more once ended
        assert len(stream.notifications) == 1

    run(scenario)


def test_a_remote_proposal_is_rejected_by_the_application_or_the_timeout(fake_driver):
    async def scenario():
        session, driver, observer = await established_outgoing(fake_driver)
        driver.on_event(RemoteProposal(["chat"]))
        assert session.state == "PROPOSED"
        assert observer.data("SIPSessionGotStreamProposal") == {"proposer": "remote", "streams": ["chat"]}
        with pytest.raises(IllegalStateError):
            session.hold()
        await session.reject_proposal()
        assert driver.commands[-1] == AnswerProposal(False, False) and session.state == "ESTABLISHED"
        assert observer.data("SIPSessionRejectedStreamProposal") == {"proposer": "remote",
                                                                     "reason": "rejected by the application"}
        session.proposal_timeout = 0.01
        observer.notifications.clear()
        driver.on_event(RemoteProposal(["chat"]))
        while session.state == "PROPOSED":
            await asyncio.sleep(0.005)
        assert observer.states() == ["PROPOSED", "ESTABLISHED"]
        assert observer.data("SIPSessionRejectedStreamProposal")["reason"] == "no decision within 0.01 s"
        await session.end()

    run(scenario)


def test_a_proposal_while_ours_is_pending_is_declined_at_once(fake_driver):
    async def scenario():
        session, driver, observer = await established_outgoing(fake_driver)
        session._transition("propose")  # as add_chat() does before its re-INVITE
        driver.on_event(RemoteProposal(["audio"]))
        await settle()
        assert driver.commands[-1] == AnswerProposal(False, False) and session.state == "PROPOSING"
        assert observer.data("SIPSessionRejectedStreamProposal") == {"proposer": "remote",
                                                                     "reason": "proposal received in state PROPOSING"}
        await session.end()

    run(scenario)


def test_dtmf_info_refusals_stay_paired_with_their_digits(fake_driver):
    """Each final INFO response is paired with the digit of the INFO it answers: a digit pjsua could not send
    (no INFO left, no response will come) leaves the queue, even when later digits were sent meanwhile."""
    async def scenario():
        session, driver, observer = await established_outgoing(fake_driver)
        session.dtmf_method = "info"
        session.send_dtmf("1")
        driver.failing.add(SendDTMF)
        not_sent = session.send_dtmf("2")
        driver.failing.clear()
        session.send_dtmf("3")
        with pytest.raises(RuntimeError):
            await not_sent
        await settle()
        driver.on_event(InfoResponse(200, "OK"))
        driver.on_event(InfoResponse(500, "Server Internal Error"))
        assert [data for name, data in observer.notifications if name == "SIPSessionDidNotSendDTMF"] == \
            [{"digit": "3", "code": 500, "reason": "Server Internal Error"}]
        assert [command.digit for command in driver.commands if isinstance(command, SendDTMF)] == ["1", "3"]

    run(scenario)


def test_each_route_is_tried_in_order_on_a_transport_failure(fake_driver):
    async def scenario():
        routes = [Route("192.0.2.1", 5060, "tcp"), Route("192.0.2.2", 5060, "udp"), Route("192.0.2.3", 5070, "udp")]
        session = Session(_Account())
        observer = Observer(session)
        await session.connect("sip:bob@example.test", routes)
        fake_driver[0].on_event(call_state("DISCONNECTED", 503, "Connection refused"))  # nothing answered
        await settle()
        fake_driver[1].on_event(call_state("DISCONNECTED", 408, "Request Timeout"))
        await settle()
        assert [driver.commands[0].route_uri for driver in fake_driver] == [str(route.uri) for route in routes]
        assert fake_driver[0].released and fake_driver[1].released and session.route == routes[2]
        assert session.state == "CALLING" and "SIPSessionDidFail" not in observer.names()
        # a response is an answer from the peer: no more routes are tried
        fake_driver[2].on_event(call_state("DISCONNECTED", 503, "Service Unavailable", True))
        assert len(fake_driver) == 3 and observer.data("SIPSessionDidFail")["code"] == 503

    run(scenario)
