# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the command-line entry points (``experiments/*.py``, the study printers).

Every entry point reports a user error -- an unknown flag or config field, an
invalid value, a missing or damaged file -- as ONE line ``error: ...`` on
stderr that says what to do (:func:`error`), never a traceback, and takes
config overrides as ``--config.FIELD=VALUE`` (:func:`split_overrides`,
:func:`load_config`, parsed by the field's type).

Example:
  >>> split_overrides(["--workdir", "w", "--config.seed=1", "--config.train.epochs", "2"])
  ([('seed', '1'), ('train.epochs', '2')], ['--workdir', 'w'])
"""

from __future__ import annotations

import sys

__all__ = ["error", "split_overrides", "parse_flags", "load_config", "exit_process", "ignore_sigint",
           "deferred_sigint"]


def error(message, status: int = 1) -> int:
  """Prints ``error: MESSAGE`` as one line on stderr (whitespace folded); returns ``status``.

  Example:
    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...   error("results.json is missing:\\n  run the experiment first", 2)
    2
    >>> err.getvalue()
    'error: results.json is missing: run the experiment first\\n'
  """
  text = " ".join(str(message).split())  # one line, whatever the exception's formatting
  print(f"error: {text}", file=sys.stderr)
  return status


def ignore_sigint() -> None:
  """Ignores further Ctrl-C (from the first one's handler on: the cleanup must not be cut short)."""
  import signal  # noqa: PLC0415
  import threading  # noqa: PLC0415

  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class deferred_sigint:  # noqa: N801 -- used as a context manager
  """Holds Ctrl-C back during imports; raises ``KeyboardInterrupt`` once they are done.

  A ``KeyboardInterrupt`` raised while a C extension initialises (jaxlib,
  numpy, ...) surfaces as an ``ImportError`` traceback instead of the
  interrupt. Inside this block SIGINT is only recorded; on leaving it the
  previous handler is restored and a recorded interrupt is raised as
  ``KeyboardInterrupt``. (Does nothing outside the main thread or when SIGINT
  is not handled by Python's default handler.)
  """

  def __enter__(self):
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    self.received, self.previous = [], None
    if (threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
      self.previous = signal.signal(signal.SIGINT, lambda signum, frame: self.received.append(1))
    return self

  def __exit__(self, *exc):
    import signal  # noqa: PLC0415

    if self.previous is not None:
      signal.signal(signal.SIGINT, self.previous)
    if self.received and exc[0] is None:
      raise KeyboardInterrupt
    return False


def exit_process(status: int) -> None:
  """Ends a command-line process with ``status``; after Ctrl-C (130) without interpreter teardown.

  An interrupt can land while JAX / XLA work is still in flight on native
  threads (an asynchronously dispatched computation, a compilation, a
  transfer). The normal exit then finalizes the interpreter and destroys the
  XLA client and the modules under those threads, which can crash the process
  (a segfault, exit 139, after the "interrupted" message). Everything worth
  keeping is already on disk when a command reports the interrupt (the results
  files are fsynced and written atomically), so after 130 the streams are
  flushed and the process ends with :func:`os._exit`, which runs no atexit
  handler, no finalizer and no thread join. Other statuses exit normally.
  """
  import os  # noqa: PLC0415

  if status != 130:
    sys.exit(status)
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (OSError, ValueError):
      pass
  os._exit(130)


def split_overrides(args: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
  """Separates ``--config.FIELD=VALUE`` / ``--config.FIELD VALUE`` from the other flags.

  Raises ``ValueError`` for ``--config.`` without a field or a value.
  """
  overrides, rest = [], []
  i = 0
  while i < len(args):
    a = args[i]
    if a.startswith("--config."):
      field, eq, value = a[len("--config."):].partition("=")
      if not field:
        raise ValueError(f"{a!r}: name a config field, e.g. --config.seed=1")
      if not eq:
        if i + 1 >= len(args):
          raise ValueError(f"{a} needs a value: {a}=VALUE")
        i += 1
        value = args[i]
      overrides.append((field, value))
    else:
      rest.append(a)
    i += 1
  return overrides, rest


def parse_flags(flag_values, argv: list[str], *, usage: str, doc: str = ""
                ) -> tuple[list[tuple[str, str]], int | None]:
  """Parses a command line (program name first) into ``flag_values`` (an absl ``FlagValues``).

  ``--config.FIELD=VALUE`` arguments are set aside (:func:`split_overrides`);
  the rest are the entry point's own flags. ``-h`` / ``--help`` prints ``doc``,
  ``usage`` and the flags.

  Returns:
    ``(overrides, None)`` to go on, or ``([], status)`` when the command is
    done: help printed (0) or a usage error -- an unknown flag, a bad value,
    an unexpected argument -- printed as one line (2). On success absl's
    global flags are marked parsed (absl logging expects it) and absl logging
    is set to warnings (orbax's INFO lines would drown the progress bars).
  """
  from absl import flags, logging  # noqa: PLC0415

  if any(a in ("-h", "--help", "-help", "--helpfull") for a in argv[1:]):
    print(f"{doc}\n{usage}\n\nflags:\n{flag_values.get_help()}")
    return [], 0
  try:
    overrides, rest = split_overrides(argv[1:])
    flag_values.unparse_flags()  # an entry point's main() may run more than once in a process
    extra = flag_values([argv[0], *rest])
  except (flags.Error, ValueError) as e:
    return [], error(f"{e}. {usage}", 2)
  if len(extra) > 1:
    return [], error(f"unexpected arguments {extra[1:]}. {usage}", 2)
  flags.FLAGS.mark_as_parsed()
  logging.set_verbosity(logging.WARNING)
  return overrides, None


def load_config(spec: str, overrides: list[tuple[str, str]] = ()):
  """``(module, config)`` of ``NAME[:variant]`` / ``path[:variant]`` with text overrides applied.

  ``overrides`` are ``(dotted_field, text)`` pairs from :func:`split_overrides`,
  parsed by the field's type (:func:`lcoupling.runner.parse_override`). Unknown
  fields, wrong types and missing files raise ``ValueError`` /
  ``FileNotFoundError`` naming them. The config is not validated or locked.
  """
  from lcoupling import runner  # noqa: PLC0415 -- keep `import lcoupling.cli` light

  path, _, arg = str(spec).partition(":")
  module = runner.load_config_module(path)
  config = module.get_config(arg or None)
  for field, text in overrides:
    runner.apply_overrides(config, {field: runner.parse_override(config, field, text)})
  return module, config
