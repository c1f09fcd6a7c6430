"""The Session Manager data channel: the websocket protocol behind StreamUrl."""
