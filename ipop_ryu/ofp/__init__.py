"""Intents -> OpenFlow 1.3 messages. The only place, with the app shell, that imports Ryu."""
