"""The sweep's allowed values and defaults, declared once: the config model, the command line
and the sweep read them from here."""

HEARTBEAT_SECONDS = 10  # interval of running trials' heartbeats on RDB storages; 4x silent = dead
