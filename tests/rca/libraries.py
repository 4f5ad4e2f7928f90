"""How an application service writes one line, with whichever logging library it uses.

Scenarios give a service's lines as klog's ``(L|file.go:N, '"Message" key="value"')``, the
form the platform's own programs write. Real services rarely log with klog: each world
draws, per service, one of the libraries below (and whether its errors carry a stack
trace), and every line the service writes, start-up, requests and the failures a scenario
injects, goes through that library's writer, so the story is the same in any of them.

>>> record = klog_record("E|client.go:87", '"Query failed" err="pq: role \\\\"app\\\\"" code=503')
>>> record.message, record.fields
('Query failed', (('err', 'pq: role "app"'), ('code', '503')))
>>> style = LogStyle("zap", "checkout")
>>> print(style.line("E|client.go:87", 1678816801123456789, '"Query failed" code=503'))
{"level":"error","ts":1678816801.123456,"logger":"checkout","caller":"client.go:87","msg":"Query failed","code":503}
>>> print(LogStyle("slog", "checkout").line("W|pool.go:9", 1678816801123456789, '"Slow" n=2'))
time=2023-03-14T18:00:01.123Z level=WARN msg=Slow n=2
>>> print(LogStyle("spring", "checkout").line("I|handler.go:1", 1678816801123456789, '"Served"'))
2023-03-14T18:00:01.123Z  INFO 1 --- [checkout] [nio-8080-exec-4] c.e.checkout.Handler                     : Served
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from sample_logs import formats as fmt
from sample_logs.formats import NS

_PAIR = re.compile(r'([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S+)')
_QUOTED_MESSAGE = re.compile(r'^"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Record:
    """One line a service logs, apart from how any library writes it: klog's level
    letter, the calling file and line, the message and its key-value fields (values as
    text), and klog's own text of it."""

    level: str
    caller: str
    message: str
    fields: tuple[tuple[str, str], ...]
    text: str

    @property
    def failed(self) -> bool:
        return self.level in ("E", "F")


def klog_record(code: str, text: str) -> Record:
    """The record a klog line's code and structured text stand for: a quoted message,
    then ``key=value`` pairs (quoted values unquoted)."""
    level, caller = code.split("|", 1)
    head = _QUOTED_MESSAGE.match(text)
    if head is None:
        return Record(level, caller, text, (), text)
    fields = tuple(
        (key, json.loads(value) if value.startswith('"') else value)
        for key, value in _PAIR.findall(text[head.end() :])
    )
    return Record(level, caller, json.loads(f'"{head.group(1)}"'), fields, text)


@dataclass(frozen=True)
class LogStyle:
    """How one service logs: its library (a key of :data:`WRITERS`), the service's name
    (zap's logger, Spring's application name) and whether its errors carry a trace."""

    library: str
    service: str
    traces: bool = False

    def line(self, code: str, t: int, text: str) -> str:
        """The service's line at ``t``; a trace's lines follow after newlines."""
        return WRITERS[self.library](klog_record(code, text), t, self)


# --- the writers, one per library -----------------------------------------------------------


def klog_line(record: Record, t: int, style: LogStyle) -> str:
    return fmt.klog(record.level, t, record.caller, record.text)


def zap_line(record: Record, t: int, style: LogStyle) -> str:
    """zap's production JSON encoder: epoch seconds, the logger's name, the caller; an
    error under ``error`` and, for an error, the stack trace under ``stacktrace``."""
    second, ns = divmod(t, NS)
    body: dict = {
        "level": _LEVELS["zap"][record.level],
        "ts": float(f"{second}.{ns // 1000:06d}"),
        "logger": style.service,
        "caller": record.caller,
        "msg": record.message,
    }
    body.update({_ZAP_KEYS.get(k, k): _json_value(v) for k, v in record.fields})
    if record.failed and style.traces:
        body["stacktrace"] = "\n".join(_go_frames(record, style))
    return json.dumps(body, separators=(",", ":"))


def slog_line(record: Record, t: int, style: LogStyle) -> str:
    """log/slog's TextHandler: milliseconds, upper-case levels, values quoted only when
    they need it."""
    head = f"time={fmt.iso_ms(t)} level={_LEVELS['slog'][record.level]}"
    return f"{head} {_logfmt_pairs((('msg', record.message), *record.fields))}"


def logrus_line(record: Record, t: int, style: LogStyle) -> str:
    """logrus' TextFormatter without a terminal: the time quoted, lower-case levels."""
    head = f'time="{fmt.rfc3339_nano(t)}" level={_LEVELS["logrus"][record.level]}'
    return f"{head} {_logfmt_pairs((('msg', record.message), *record.fields))}"


def spring_line(record: Record, t: int, style: LogStyle) -> str:
    """Spring Boot 3's console pattern (``%5p``, pid, the application's name, the thread
    cut to 15, the logger cut to 40); the fields follow the message as ``key=value``,
    and a failure's Java stack trace follows on lines of its own."""
    level = _LEVELS["spring"][record.level]
    thread = "main" if record.caller.startswith("main.go") else _worker_thread(t)
    message = " ".join((record.message, _logfmt_pairs(record.fields))).rstrip()
    line = (
        f"{fmt.iso_ms(t)} {level:>5} 1 --- [{style.service}] [{thread:>15}] "
        f"{_java_logger(record, style):<40} : {message}"
    )
    if record.failed and style.traces:
        return "\n".join((line, *_java_trace(record, style)))
    return line


#: Each library's writer, by the name a world draws.
WRITERS: dict[str, Callable[[Record, int, LogStyle], str]] = {
    "klog": klog_line,
    "zap": zap_line,
    "slog": slog_line,
    "logrus": logrus_line,
    "spring": spring_line,
}

#: How each library names klog's levels.
_LEVELS = {
    "zap": {"I": "info", "W": "warn", "E": "error", "F": "fatal"},
    "slog": {"I": "INFO", "W": "WARN", "E": "ERROR", "F": "ERROR"},
    "logrus": {"I": "info", "W": "warning", "E": "error", "F": "fatal"},
    "spring": {"I": "INFO", "W": "WARN", "E": "ERROR", "F": "FATAL"},
}
#: ``zap.Error(err)`` writes its error under ``error``.
_ZAP_KEYS = {"err": "error"}
#: The exception a Java client throws for the failures the scenarios inject, by the file
#: its Go counterpart logs them from.
_EXCEPTIONS = {
    "client": "org.springframework.web.client.ResourceAccessException",
    "grpc": "io.grpc.StatusRuntimeException",
    "cache": "io.lettuce.core.RedisConnectionException",
    "pool": "java.sql.SQLTransientConnectionException",
    "handler": "java.lang.IllegalStateException",
}


# --- pieces -------------------------------------------------------------------------------


def _json_value(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _logfmt_pairs(pairs) -> str:
    """``key=value`` as slog and logrus write them: a value quoted when it holds a space,
    a quote, an ``=`` or nothing."""
    return " ".join(f"{key}={_logfmt_value(value)}" for key, value in pairs)


def _logfmt_value(value: str) -> str:
    if not value or any(c in value for c in ' "=\\\n'):
        return fmt.go_quote(value)
    return value


def _worker_thread(t: int) -> str:
    """Tomcat's request threads, ``http-nio-8080-exec-N``, as ``%15.15t`` cuts them."""
    return f"http-nio-8080-exec-{t // 1_000_000 % 10 + 1}"[-15:]


def _class_name(record: Record) -> str:
    return record.caller.split(".", 1)[0].title().replace("_", "")


def _package(style: LogStyle) -> str:
    return re.sub(r"[^a-z0-9]", "", style.service.lower())


def _java_logger(record: Record, style: LogStyle) -> str:
    """``com.example.<service>.<Class>`` with its packages cut to their initials but the
    last, as Spring's ``%logger{39}`` does."""
    return f"c.e.{_package(style)}.{_class_name(record)}"


def _java_trace(record: Record, style: LogStyle) -> list[str]:
    cause = dict(record.fields).get("err", record.message)
    exception = _EXCEPTIONS.get(record.caller.split(".", 1)[0], "java.lang.RuntimeException")
    package = _package(style)
    where = _class_name(record)
    line = record.caller.rsplit(":", 1)[-1]
    return [
        f"{exception}: {cause}",
        f"\tat com.example.{package}.{where}.handle({where}.java:{line})",
        "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
        "\t... 48 common frames omitted",
    ]


def _go_frames(record: Record, style: LogStyle) -> list[str]:
    return [
        f"main.(*{_class_name(record)}).ServeHTTP",
        f"\t/src/{style.service}/{record.caller}",
        "net/http.serverHandler.ServeHTTP",
        "\t/usr/local/go/src/net/http/server.go:2938",
    ]
