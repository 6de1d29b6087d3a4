"""The warm engine server behind `viewfinder serve` and `viewfinder localize --warm` (after mypy's dmypy).

A fresh `viewfinder` process spends seconds importing torch and creating the model's CPU kernels before its
first result; the server pays that once and keeps models loaded. Clients send their command line over a
Unix socket in a private folder and get its output and exit code back, as if it had run in their process.

    command.py   the `viewfinder serve` subcommand: run, start in the background, status, stop
    paths.py     where the socket, lock, state and log live (a private per-user folder)
    protocol.py  length-prefixed JSON messages
    lock.py      one server per folder (flock: a dead server's lock frees itself)
    client.py    the `--warm` client (standard library only: it must start in a blink)
    server.py    accepts connections, runs commands one at a time, idles out
    request.py   one client command run in the server: its cwd, environment, umask and output streams
    pool.py      warm Localizers kept between commands
    warmup.py    a first localisation on the demo scene so the first real one finds the kernels ready
"""
