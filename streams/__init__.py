"""The Faust application: topics, tables and agents. The only code that imports faust."""
