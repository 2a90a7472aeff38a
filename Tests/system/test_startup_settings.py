"""orchestratord refuses to start on settings it cannot honour, with exit 64 and a message naming
the setting, rather than starting half-configured."""

from __future__ import annotations

import json
import re
import subprocess
from urllib.parse import urlsplit

import pytest

from procs import binary

CASES = [
    # Found by black-box testing: these used to start, the file or value silently unused.
    (["--tls-cert-file", "/etc/hostname"], "tls-cert-file/tls-key-file are set but there is no TLS listener"),
    (["--tls-key-file", "/etc/hostname"], "tls-cert-file/tls-key-file are set but there is no TLS listener"),
    (["--jwt-clock-skew", "abc"], 'jwt-clock-skew "abc" must be an integer in 0...3600'),
    (["--jwt-clock-skew", "1.5"], 'jwt-clock-skew "1.5" must be an integer in 0...3600'),
    # Refused before too; kept here so the rule stays one rule.
    (["--jwt-key-file", "/etc/hostname"], "jwt-key-file/jwks-file are set but auth is none"),
    (["--lease-ttl", "5", "--heartbeat-interval", "5"], "heartbeat-interval must be shorter than lease-ttl"),
    (["--max-assignment-size", "10"], "max-assignment-size"),
    # An assignment is a response message: one over the send limit would end its executor's stream.
    (["--max-send-message-size", "1048576"], "max-send-message-size (1048576) must be at least max-assignment-size (4194304)"),
    (["--max-send-message-size", "4294967296"], 'max-send-message-size "4294967296" must be an integer in 1024...2147483647'),
    # A receive budget below the largest message would make such a message wait for ever.
    (["--max-connection-receive-buffer", "1048576"],
     "max-connection-receive-buffer (1048576) must be at least max-receive-message-size (4194304)"),
    (["--max-receive-message-size", "8388608", "--max-server-receive-buffer", "16777216"],
     "max-server-receive-buffer (16777216) must be at least max-connection-receive-buffer (33554432)"),
    # Found by black-box testing: exit 1 with "catalog /nonexistent.json: cannot be read".
    (["--retention", "3 weeks"], 'retention "3 weeks" is not a duration'),
    (["--retention", "-1d"], 'retention "-1d" is not a duration'),
    (["--catalog-file", "/nonexistent.json"], 'catalog-file "/nonexistent.json" cannot be read'),
    # Found by black-box testing: a negative number was taken for a flag ("Missing value for ...").
    (["--shutdown-grace", "-5"], 'shutdown-grace "-5" must be an integer in 0...3600'),
    (["--rate-limit-rps", "-1"], 'rate-limit-rps "-1" must be a number in 0...1000000'),
    # Found by black-box testing: "--log-level" was taken as the TTL, then "Unexpected argument 'debug'".
    (["--lease-ttl", "--log-level", "debug"], "--lease-ttl needs a value (the next argument is the option --log-level)"),
    (["--log-level"], "--log-level needs a value"),
    # Found by black-box testing: each address alone could be bound, so the check before the
    # database passed, migrations ran, and the second listener failed "Address already in use",
    # exit 1. Now a setting error, found before the database is touched.
    (["--admin-address", "127.0.0.1:57321", "--grpc-address", "127.0.0.1:57321"],
     "grpc-address and admin-address both listen on 127.0.0.1:57321 (port 57321): give each its own port"),
    (["--admin-address", "0.0.0.0:57322", "--grpc-address", "localhost:57322"],
     "grpc-address and admin-address both listen on localhost:57322"),
    (["--grpc-address", "127.0.0.1:57323", "--grpc-tls-address", "127.0.0.1:57323", "--tls-cert-file", "/etc/hostname",
      "--tls-key-file", "/etc/hostname"], "grpc-address and grpc-tls-address both listen on 127.0.0.1:57323"),
    # Other spellings of one address (found by black-box testing: these passed and migrated first).
    (["--admin-address", "127.1:57324", "--grpc-address", "127.0.0.1:57324"], "grpc-address and admin-address both listen on"),
    (["--admin-address", "[::ffff:127.0.0.1]:57325", "--grpc-address", "2130706433:57325"],
     "grpc-address and admin-address both listen on"),
]


@pytest.mark.parametrize("args,message", CASES)
def test_settings_it_cannot_honour_stop_the_start(args, message):
    result = subprocess.run([str(binary("orchestratord")), "--grpc-address", "127.0.0.1:0", "--admin-address", "none",
                             "--database-url", "postgresql://nobody@127.0.0.1:1/none", *args],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 64, (result.returncode, result.stderr[-2000:])
    assert message in result.stderr, result.stderr[-2000:]


def test_grpc_address_none_turns_the_cleartext_listener_off_from_the_environment():
    """docs/SECURITY.md: TLS only is `grpc-address none`. An empty ORCHESTRATOR_GRPC_ADDRESS counts
    as unset, as every empty environment variable does, and kept the default cleartext listener on
    (found by black-box testing); `none` works from every source. Without a TLS listener it leaves
    none at all, which is refused."""
    import os
    result = subprocess.run([str(binary("orchestratord")), "--admin-address", "none",
                             "--database-url", "postgresql://nobody@127.0.0.1:1/none"],
                            env={**os.environ, "ORCHESTRATOR_GRPC_ADDRESS": "none"}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 64, (result.returncode, result.stderr[-2000:])
    assert "no gRPC listener: set grpc-address or grpc-tls-address" in result.stderr, result.stderr[-2000:]


def test_config_file_values_are_not_coerced(tmp_path):
    """A JSON boolean for a numeric setting was taken as 1 ({"lease-ttl": true} → a 1 s TTL, then an
    unrelated complaint); malformed JSON read as 'expected a JSON object'. Found by black-box testing."""
    # A setting's value is checked like a flag's, and a file that is not a settings object is a
    # configuration mistake too: exit 64 either way (the file's own mistakes exited 1; found by
    # black-box testing, as README promises 64 for start-up setting errors).
    for content, code, message in [('{"lease-ttl": true}', 64, 'lease-ttl "true" must be an integer'),
                                   ('{"lease-ttl": 1e400}', 64, "is not valid: not valid JSON"),
                                   # Where the file stops parsing, not only that it does.
                                   ('{\n  "lease-ttl": 30,\n  "heartbeat-interval": ten\n}', 64,
                                    "not valid JSON: invalid value at line 3, column 26"),
                                   ('[1, 2]', 64, "expected a JSON object of setting names to values"),
                                   ('{"lease-tll": 5}', 64, 'unknown setting "lease-tll"'),
                                   # JSON parsers keep the last of two equal keys: which one was meant is unknown.
                                   ('{"lease-ttl": 30, "lease-ttl": 5}', 64, 'setting "lease-ttl" appears twice'),
                                   # Not JSON, though Foundation's parser takes it (found by black-box testing).
                                   ('{"lease-ttl": 30,\n}', 64, "not valid JSON: trailing comma before '}' at line 1, column 17")]:
        config = tmp_path / "config.json"
        config.write_text(content)
        result = subprocess.run([str(binary("orchestratord")), "--config", str(config), "--admin-address", "none",
                                 "--database-url", "postgresql://nobody@127.0.0.1:1/none"],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == code and message in result.stderr, (content, result.returncode, result.stderr[-1000:])


def test_config_files_that_cannot_be_read_say_why_and_whole_numbers_are_integers(tmp_path):
    import os
    """Found by black-box testing: `--config /dev/zero` said "You don't have permission", a folder
    "(NSCocoaErrorDomain error 256.)"; {"lease-ttl": 20.0} was refused and 1e1 shown as "10.0"."""
    fifo = tmp_path / "settings.fifo"
    os.mkfifo(fifo)  # a FIFO no one writes to blocked the start for ever
    for path, message in [("/dev/zero", "cannot read config file /dev/zero: it is not a regular file"),
                          (str(fifo), f"cannot read config file {fifo}: it is not a regular file"),
                          (str(tmp_path), f"cannot read config file {tmp_path}: it is a directory, not a JSON file"),
                          (str(tmp_path / "missing.json"), f"cannot read config file {tmp_path / 'missing.json'}: No such file or directory")]:
        result = subprocess.run([str(binary("orchestratord")), "--config", path], capture_output=True, text=True, timeout=30)
        assert result.returncode == 64 and message in result.stderr, (path, result.returncode, result.stderr[-1000:])
    config = tmp_path / "numbers.json"
    config.write_text('{"lease-ttl": 20.0, "heartbeat-interval": 1e1, "admin-address": "none", "grpc-address": "127.0.0.1:0"}')
    result = subprocess.run([str(binary("orchestratord")), "--config", str(config),
                             "--database-url", "postgresql://nobody@127.0.0.1:1/none"],
                            env={**os.environ, "ORCHESTRATOR_LEASETTL": "5"}, capture_output=True, text=True, timeout=60)
    banner = result.stderr
    assert re.search(r"lease-ttl +20 +\[file\]", banner) and re.search(r"heartbeat-interval +10 +\[file\]", banner), banner[-3000:]
    # A misspelt environment variable is named, not silently ignored.
    warning = next(json.loads(line) for line in banner.splitlines() if "no setting of orchestratord" in line)
    assert warning["variables"] == "ORCHESTRATOR_LEASETTL", warning


def stopped_because(stderr: str) -> str:
    """The error of the "orchestratord failed" line, the last of a JSON log (the default format)."""
    last = json.loads(stderr.strip().splitlines()[-1])
    assert last["level"] == "critical" and last["message"] == "orchestratord failed", last
    return last["error"]


def test_a_server_that_cannot_start_says_why_in_its_log_format(database):
    """Past the settings, a start-up failure is a log line like the others (JSON by default), not
    ArgumentParser's plain 'Error: …' in the middle of the JSON stream a collector parses. (An
    address that does not resolve is now refused before the database is touched, as a setting:
    exit 64; it went through the same log line as exit 1.)"""
    result = subprocess.run([str(binary("orchestratord")), "--grpc-address", "999.1.1.1:56112", "--admin-address", "none",
                             "--database-url", database, "--log-format", "json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 64, (result.returncode, result.stderr[-2000:])
    for line in result.stderr.splitlines():
        if line.strip():
            json.loads(line)  # every line is JSON
    assert "999.1.1.1 is not an address or resolvable host name of this machine" in stopped_because(result.stderr)


def test_an_address_that_is_no_address_is_named_as_such(database):
    """Found by black-box testing: 'cannot listen on 999.1.1.1:56112: Success' (a stale errno)."""
    result = subprocess.run([str(binary("orchestratord")), "--grpc-address", "999.1.1.1:56112", "--admin-address", "none",
                             "--database-url", database], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "999.1.1.1 is not an address or resolvable host name of this machine" in result.stderr, result.stderr[-2000:]


def test_a_database_url_no_retry_can_mend_stops_the_start_at_once_naming_it(database):
    """Found by black-box testing: a malformed URL, a role or a database that does not exist were
    retried for the whole connect timeout (~15 s) as if the server were starting, then ended with
    exit 1 and a PostgresError that did not name the setting."""
    parts = urlsplit(database)
    # A TCP URL: tools/test's cluster (trust), or the suite's embedded one, whose TCP logins take a
    # password — and a cluster asking for a password does not say whether a role exists.
    login = f":{parts.password}" if parts.password else ""

    def url_for(user: str, name: str) -> str:
        return f"postgresql://{user}{login}@127.0.0.1:{parts.port}/{name}"

    unknown_role = ('password authentication failed for user "no_such_role"' if parts.password
                    else 'role "no_such_role" does not exist')
    for url, message in [("garbage://x", 'missing "=" after "garbage://x"'),
                         (url_for("no_such_role", "postgres"), unknown_role),
                         (url_for(parts.username or "postgres", "no_such_db"), 'database "no_such_db" does not exist'),
                         # Found by black-box testing: libpq's message quotes the whole URI, and this
                         # one was retried for 13 s, its password in every "retrying" log line.
                         ("postgresql://postgres:S3cretPw!xyz@[::1/orch",
                          'IPv6 host address in URI: "postgresql://postgres:****@[::1/orch"')]:
        result = subprocess.run([str(binary("orchestratord")), "--grpc-address", "127.0.0.1:0", "--admin-address", "none",
                                 "--database-url", url], capture_output=True, text=True, timeout=60)
        assert result.returncode == 64, (url, result.returncode, result.stderr[-1000:])
        error = stopped_because(result.stderr)
        assert "database-url cannot be used" in error and message in error, result.stderr[-1000:]
        assert "retrying" not in result.stdout + result.stderr
        assert "S3cretPw" not in result.stdout + result.stderr


def test_both_binaries_print_their_version():
    """Operators expect `--version`; executors get the same string in Welcome.server_version."""
    for name in ("orchestratord", "orchctl"):
        result = subprocess.run([str(binary(name)), "--version"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, (name, result.stderr)
        assert result.stdout.strip().count(".") == 2, (name, result.stdout)


def test_listeners_it_cannot_open_stop_the_start_before_the_database_is_migrated(cluster, tmp_path):
    """Found by black-box testing: a TLS file that does not load, or a gRPC port in use, failed the
    start only after every migration had been applied (exit 1, "listener 1"), so a typo during an
    upgrade migrated production and left only a restore to go back. An admin address in use stopped
    the start in time but exited 1, not 64 as for every other setting's mistake."""
    import socket
    import uuid
    from procs import psql

    database = cluster.create_database("sys_listener_" + uuid.uuid4().hex[:8])
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        for args, message in [
            (["--grpc-tls-address", "127.0.0.1:0", "--tls-cert-file", str(tmp_path / "missing.pem"),
              "--tls-key-file", str(tmp_path / "missing.key")],
             f"tls-cert-file, tls-key-file: cannot load certificate chain {tmp_path / 'missing.pem'}"),
            (["--grpc-address", f"127.0.0.1:{port}"], f"grpc-address: cannot listen on 127.0.0.1:{port}: Address already in use"),
            (["--admin-address", f"127.0.0.1:{port}"],
             f"admin-address: cannot listen on 127.0.0.1:{port} for the admin HTTP server: Address already in use"),
            (["--grpc-address", "256.1.1.1:50051"], "grpc-address: cannot listen on 256.1.1.1:50051: 256.1.1.1 is not an address"),
        ]:
            command = [str(binary("orchestratord")), "--grpc-address", "127.0.0.1:0", "--admin-address", "none",
                       "--database-url", database, *args]
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert result.returncode == 64, (args, result.returncode, result.stderr[-1500:])
            assert message in stopped_because(result.stderr), (args, result.stderr[-1500:])
            assert psql(database, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [["0"]], args
    finally:
        taken.close()


def test_a_listener_named_by_host_name_is_refused_when_any_of_its_addresses_is_taken(cluster, tmp_path):
    """`--grpc-address localhost:PORT` listens on each address of the name (::1 and 127.0.0.1 on a
    standard Debian), but the check before the migrations tried only the first: with 127.0.0.1:PORT
    taken it passed, every migration ran, and then the start failed."""
    import socket
    import uuid
    from hosts_file import skip_without_private_mounts, with_hosts_file
    from procs import psql

    skip_without_private_mounts()
    database = cluster.create_database("sys_listener_" + uuid.uuid4().hex[:8])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(with_hosts_file(tmp_path, f"exec '{binary('orchestratord')}' --grpc-address localhost:{port} "
                                                          f"--admin-address none --database-url '{database}'"),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 64, (result.returncode, result.stderr[-1500:])
    assert f"grpc-address: cannot listen on localhost:{port}: Address already in use" in stopped_because(result.stderr)
    assert psql(database, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [["0"]]
