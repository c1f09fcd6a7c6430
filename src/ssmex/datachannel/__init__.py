"""The Session Manager data channel: the websocket protocol behind StreamUrl.

`run_session` runs a session natively, in place of session-manager-plugin.
The emulator's side of the same protocol is in `ssmex.emulator.datachannel`.
"""

from ssmex.datachannel.client import DataChannelError, SessionOptions, botocore_resume, run_session

__all__ = ["DataChannelError", "SessionOptions", "botocore_resume", "run_session"]
