"""Resuming through the emulator's real SSM HTTP endpoint, signed by botocore."""

import hashlib
import os

import botocore.session

from ssmex.datachannel.client import botocore_resume
from ssmex.emulator.datachannel import DataChannelServer
from ssmex.emulator.harness import ClientThread, EchoServer

from test_native_port import exchange

INSTANCE_ID = "i-0123456789abcdef0"
TIMEOUT = 30


def ssm_client(endpoint_url):
    return botocore.session.get_session().create_client("ssm", region_name="us-east-1", endpoint_url=endpoint_url)


def test_resume_resolves_credentials_again(emulator, ssm_endpoint, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    echo = EchoServer()
    emulator.instances[INSTANCE_ID].port_map[80] = ("127.0.0.1", echo.port)
    server = DataChannelServer(emulator).start()
    try:
        response = ssm_client(ssm_endpoint.endpoint_url).start_session(
            Target=INSTANCE_ID, DocumentName="AWS-StartPortForwardingSession", Parameters={"portNumber": ["80"]})
        resume = botocore_resume(lambda: ssm_client(ssm_endpoint.endpoint_url), response["SessionId"])
        client = ClientThread(response, resume)
        port = client.wait_for_port()

        # Credentials rotate while the session runs; the resume must sign with the new ones.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEROTATED01")
        server.faults.drop_websocket_after = 300
        data = os.urandom(1024 * 1024)
        echoed = exchange(port, data)

        ssm_client(ssm_endpoint.endpoint_url).terminate_session(SessionId=response["SessionId"])
        assert client.join(TIMEOUT)
    finally:
        server.close()
        echo.close()

    assert client.error is None
    assert client.exit_code == 0
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()
    resumes = emulator.calls_of("ResumeSession")
    assert len(resumes) == 1
    assert resumes[0].status == 200
    assert resumes[0].access_key_id == "AKIAEXAMPLEROTATED01"
