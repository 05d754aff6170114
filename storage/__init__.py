"""Tables, engine and sessions, repositories and migrations."""
