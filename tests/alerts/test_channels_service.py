"""End to end: a real ``videohub serve`` with a WeCom robot, a DingTalk robot and a mail channel
configured through environment variables, pointing at the doubles. A simulator camera stops: its
offline alert reaches all three in their own formats; it comes back: "resolved" reaches them.
No key, token, signing secret or mail password shows in the service's log or in any API answer.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.alerts.robots import DingTalkRobot, InThread, WeComRobot
from tests.alerts.smtpd import SmtpDouble, make_certificates
from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import VideohubService

pytestmark = pytest.mark.media

WECOM_KEY = "e2e-wecom-" + uuid.uuid4().hex
DING_TOKEN = "e2e-ding-token-" + uuid.uuid4().hex
DING_SECRET = "SECe2e" + uuid.uuid4().hex
MAIL_PASSWORD = "e2e-mail-pw-" + uuid.uuid4().hex
SECRETS = (WECOM_KEY, DING_TOKEN, DING_SECRET, MAIL_PASSWORD)


def wait_for(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {within} s: {what}")


class Doubles:
    def __init__(self, tmp: Path) -> None:
        self.thread = InThread()
        self.certs = make_certificates(tmp, "smtp")
        self.wecom = WeComRobot(key=WECOM_KEY)
        self.ding = DingTalkRobot(token=DING_TOKEN, secret=DING_SECRET)
        self.smtp = SmtpDouble(tls=self.certs.server, users={"videohub": MAIL_PASSWORD})
        for double in (self.wecom, self.ding, self.smtp):
            self.thread.run(double.start())

    def close(self) -> None:
        for double in (self.wecom, self.ding, self.smtp):
            self.thread.run(double.stop())
        self.thread.close()


@pytest.fixture
def doubles(tmp_path: Path) -> Iterator[Doubles]:
    found = Doubles(tmp_path)
    try:
        yield found
    finally:
        found.close()


def env_for(d: Doubles) -> dict[str, str]:
    wecom = [
        {
            "name": "ga_wecom",
            "key_env": "E2E_WECOM_KEY",
            "base_url": d.wecom.base_url,
            "lines": ["public_security"],
        }
    ]
    ding = [
        {
            "name": "ga_ding",
            "token_env": "E2E_DING_TOKEN",
            "secret_env": "E2E_DING_SECRET",
            "base_url": d.ding.base_url,
            "at_mobiles": ["13800000000"],
        }
    ]
    mail = [
        {
            "name": "ga_mail",
            "host": "127.0.0.1",
            "port": d.smtp.port,
            "security": "starttls",
            "ca_file": str(d.certs.ca_file),
            "username": "videohub",
            "password_env": "E2E_MAIL_PASSWORD",
            "from_addr": "videohub@example.org",
            "to": ["duty@example.org"],
            "lines": ["public_security"],
        }
    ]
    return {
        "E2E_WECOM_KEY": WECOM_KEY,
        "E2E_DING_TOKEN": DING_TOKEN,
        "E2E_DING_SECRET": DING_SECRET,
        "E2E_MAIL_PASSWORD": MAIL_PASSWORD,
        "VIDEOHUB_ALERTS__CHANNELS__WECOM": json.dumps(wecom),
        "VIDEOHUB_ALERTS__CHANNELS__DINGTALK": json.dumps(ding),
        "VIDEOHUB_ALERTS__CHANNELS__MAIL": json.dumps(mail),
        "VIDEOHUB_SERVER__PUBLIC_URL": "https://videohub.example.org",
        "VIDEOHUB_HEALTH__RECOVER_HOLD_SECONDS": "1",
        "VIDEOHUB_ALERTS__WEBHOOK_BACKOFF_INITIAL_SECONDS": "0.1",
        "VIDEOHUB_ALERTS__WEBHOOK_BACKOFF_MAX_SECONDS": "0.5",
    }


def test_an_offline_camera_reaches_wecom_dingtalk_and_mail_and_so_does_its_recovery(
    videohub_service_factory: Callable[..., VideohubService], camsim: CameraSimulator, doubles: Doubles
) -> None:
    service = videohub_service_factory(env=env_for(doubles))
    mount = camsim.fresh_mount()
    camera = f"ga-e2e{uuid.uuid4().hex[:6]}"
    service.create_camera(
        camera, camsim.rtsp_url(mount), name="梅里镇水厂泵房", area="梅里镇东", mode="always_on"
    )

    def state() -> str:
        return str(service.call("GET", f"/api/cameras/{camera}/health")["state"])

    wait_for(lambda: state() == "online", 30, "camera online")
    camsim.stop_mount(mount)

    def titles() -> tuple[list[str], list[str], list[str]]:
        wecom = [c.split("\n", 1)[0] for c in doubles.wecom.contents() if f"`{camera}`" in c]
        ding = [
            m["markdown"]["title"]
            for m in doubles.ding.messages()
            if "梅里镇水厂泵房" in m["markdown"]["title"]
        ]
        mail = [str(m.message()["Subject"]) for m in doubles.smtp.received]
        return wecom, ding, mail

    wait_for(lambda: all(titles()), 40, "the offline alert on all three channels")
    camsim.start_mount(mount)

    def recovered() -> bool:
        return all(any("已恢复 · 离线" in title for title in t) for t in titles())

    wait_for(recovered, 60, "the recovery on all three channels")
    wecom, ding, mail = titles()  # opened, maybe updated (the reason changed), resolved
    assert (
        wecom[0] == '## <font color="warning">告警 · 离线</font>'
        and wecom[-1] == '## <font color="info">已恢复 · 离线</font>'
    )
    assert ding[0] == "告警 · 离线 · 梅里镇水厂泵房" and ding[-1] == "已恢复 · 离线 · 梅里镇水厂泵房"
    assert mail[0] == "【视频监控】告警 · 离线：梅里镇水厂泵房（公安）"
    assert mail[-1] == "【视频监控】已恢复 · 离线：梅里镇水厂泵房（公安）"
    content = next(c for c in doubles.wecom.contents() if f"`{camera}`" in c)
    assert "> 区域：梅里镇东\n" in content
    assert content.endswith("[打开运维监测](https://videohub.example.org/health)")
    assert doubles.wecom.problems == [] and doubles.ding.problems == []
    assert {(m.tls, m.user) for m in doubles.smtp.received} == {(True, "videohub")}

    answers = [
        service.request("GET", path).text
        for path in (
            "/api/alerts",
            "/api/alerts/dead",
            "/api/health/cameras",
            f"/api/cameras/{camera}/health",
            "/api/audit",
            "/metrics",
        )
    ]
    log = service.log_text(tail=None)
    assert camera in log  # the camera's loss was logged...
    for secret in SECRETS:
        assert secret not in log, f"a secret in the service log: {secret[:12]}…"  # ...without a secret
        for answer in answers:
            assert secret not in answer
