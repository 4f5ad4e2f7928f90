"""Line formats exactly as the programs write them, as small pure functions.

Times are integer nanoseconds since the epoch (UTC) so that formatting stays exact and fast.

>>> t = 1678816801123456789  # 2023-03-14T18:00:01.123456789Z
>>> cri(t, "stderr", "hello")
'2023-03-14T18:00:01.123456789Z stderr F hello'
>>> klog("E", t, "proxier.go:1565", '"Sync failed"')
'E0314 18:00:01.123456       1 proxier.go:1565] "Sync failed"'
>>> rabbit(t, "info", "<0.812.0>", "Server startup complete")
'2023-03-14 18:00:01.123456+00:00 [info] <0.812.0> Server startup complete'
"""

from __future__ import annotations

import time
from functools import lru_cache

NS = 1_000_000_000
US = 1_000
MS = 1_000_000


@lru_cache(maxsize=8192)
def _utc(second: int) -> time.struct_time:
    return time.gmtime(second)


def _parts(t: int) -> tuple[time.struct_time, int]:
    second, ns = divmod(t, NS)
    return _utc(second), ns


@lru_cache(maxsize=8192)
def _rfc3339_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", _utc(second))


@lru_cache(maxsize=8192)
def _klog_second(second: int) -> str:
    return time.strftime("%m%d %H:%M:%S", _utc(second))


def rfc3339_nano(t: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: trailing zeros of the fraction are dropped.

    >>> rfc3339_nano(1678816801120000000)
    '2023-03-14T18:00:01.12Z'
    >>> rfc3339_nano(1678816801000000000)
    '2023-03-14T18:00:01Z'
    """
    second, ns = divmod(t, NS)
    base = _rfc3339_second(second)
    frac = f"{ns:09d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def iso_ms(t: int) -> str:
    """ISO 8601 with milliseconds and ``Z``, as CircleCI's API writes times.

    >>> iso_ms(1678816801123456789)
    '2023-03-14T18:00:01.123Z'
    """
    tm, ns = _parts(t)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', tm)}.{ns // MS:03d}Z"


def iso_us(t: int) -> str:
    """RFC 3339 with microseconds and ``Z`` (Kubernetes ``MicroTime``)."""
    tm, ns = _parts(t)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', tm)}.{ns // US:06d}Z"


def iso_s(t: int) -> str:
    """RFC 3339 to the second (Kubernetes ``Time``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", _utc(t // NS))


def human_minute(t: int) -> str:
    """A time the way people type it into a change log: ``2023-03-14 20:15``."""
    return time.strftime("%Y-%m-%d %H:%M", _utc(t // NS))


def cri(t: int, stream: str, text: str) -> str:
    """One line of a CRI container log file (containerd, CRI-O), full-line tag ``F``."""
    return f"{rfc3339_nano(t)} {stream} F {text}"


def klog(level: str, t: int, where: str, message: str, pid: int = 1) -> str:
    """A klog header line: level letter, month and day (no year), microseconds, thread id
    padded to seven, ``file:line]``, then the message."""
    second, ns = divmod(t, NS)
    return f"{level}{_klog_second(second)}.{ns // US:06d} {pid:7d} {where}] {message}"


def klog_value(value: str) -> str:
    """A structured value as klog v2.60+ writes it: quoted, or ``<`` multi-line ``>``.

    >>> klog_value("30s")
    '"30s"'
    >>> klog_value("exit status 1 (iptables-restore: line 8022 failed\\n)").split("\\n")
    ['<', '\\texit status 1 (iptables-restore: line 8022 failed', '\\t)', ' >']
    """
    if "\n" not in value:
        return go_quote(value)
    lines = value.split("\n")
    body = "".join(f"\t{line}\n" for line in lines[:-1])
    if lines[-1]:
        body += f"\t{lines[-1]}\n"
    return f"<\n{body} >"


def go_quote(value: str) -> str:
    r"""``strconv.Quote`` for the plain text these logs hold.

    >>> go_quote('a "b"\nc')
    '"a \\"b\\"\\nc"'
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped.replace(chr(9), chr(92) + "t")}"'


def go_log(t: int, text: str) -> str:
    """Go's standard ``log`` package with its default flags: ``2023/03/14 20:15:00 text``."""
    return f"{time.strftime('%Y/%m/%d %H:%M:%S', _utc(t // NS))} {text}"


def go_seconds(ns: int) -> str:
    """A duration in seconds as CoreDNS prints it (``strconv.FormatFloat(s, 'f', -1)``).

    >>> go_seconds(127000), go_seconds(2_000_874_123)
    ('0.000127s', '2.000874123s')
    """
    whole, frac = divmod(ns, NS)
    digits = f"{frac:09d}".rstrip("0")
    return f"{whole}.{digits}s" if digits else f"{whole}s"


def go_duration(ns: int) -> str:
    """``time.Duration.String()`` for durations under a minute: ``98.765432ms``, ``1.5s``.

    >>> go_duration(98_765_432), go_duration(1_500_000_000), go_duration(812_345)
    ('98.765432ms', '1.5s', '812.345µs')
    """
    for unit, size in (("s", NS), ("ms", MS), ("µs", US)):
        if ns >= size:
            whole, frac = divmod(ns, size)
            digits = f"{frac:0{len(str(size)) - 1}d}".rstrip("0")
            return f"{whole}.{digits}{unit}" if digits else f"{whole}{unit}"
    return f"{ns}ns"


def coredns_query(
    client: str,
    port: int,
    qid: int,
    qtype: str,
    name: str,
    proto: str,
    size: int,
    bufsize: int,
    rcode: str,
    flags: str,
    rsize: int,
    duration_ns: int,
) -> str:
    """The CoreDNS ``log`` plugin's default (common) format.

    >>> coredns_query("10.20.1.23", 41234, 5, "A", "github.com.", "udp", 28, 512,
    ...               "NOERROR", "qr,rd,ra", 72, 1_234_000)
    '[INFO] 10.20.1.23:41234 - 5 "A IN github.com. udp 28 false 512" NOERROR qr,rd,ra 72 0.001234s'
    """
    return (
        f'[INFO] {client}:{port} - {qid} "{qtype} IN {name} {proto} {size} false {bufsize}" '
        f"{rcode} {flags} {rsize} {go_seconds(duration_ns)}"
    )


def rabbit(t: int, level: str, pid: str, message: str) -> str:
    """A RabbitMQ 3.11 log file line (``rabbit_logger_text_fmt``); a multi-line message gets
    the same header on every line.

    >>> print(rabbit(0, "warning", "<0.1.0>", "closing AMQP connection <0.1.0>:\\nclient gone"))
    1970-01-01 00:00:00.000000+00:00 [warning] <0.1.0> closing AMQP connection <0.1.0>:
    1970-01-01 00:00:00.000000+00:00 [warning] <0.1.0> client gone
    """
    tm, ns = _parts(t)
    head = f"{time.strftime('%Y-%m-%d %H:%M:%S', tm)}.{ns // US:06d}+00:00 [{level}] {pid} "
    return "\n".join(head + line for line in message.split("\n"))
