"""Phone calls in: Twilio Media Streams and Genesys Audio Connector, bridged to sessions."""
