"""The Faust edge: the app, its topics, table, agent and timer (``app.py``) and the
collaborators it drives. The only code that imports faust or aiokafka."""
