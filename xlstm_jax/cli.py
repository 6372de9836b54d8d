"""What the entry points (xlstm_jax.train, xlstm_jax.eval) share: flag parsing with one-line
errors, `--help` that lists every `--config.*` field with the comment beside it in the
config file, the default config path, and run errors printed as one line.

  DEFAULT_CONFIG                  configs/default.py beside the package (works from any cwd)
  field_comments(source)          {"num_steps": "optimizer steps ...", ...} of a config source
  config_help(config, sources)    one "--config.<field>=<value>  <comment>" line per field
  load_config("file[:arg]")       the ConfigDict of a --config value
  parse_flags(argv, usage, fv)    absl parsing: --help prints and exits 0, errors exit 2
  run_or_exit(fn, *args)          fn(*args); ValueError/FloatingPointError: one line, exit 1
"""

from __future__ import annotations

import importlib.util
import inspect
import pathlib
import re
import sys
from collections.abc import Callable, Iterable, Sequence

from absl import flags

# configs/ sits beside the package in a checkout (and in site-packages when installed),
# so the default resolves the same from any working directory.
DEFAULT_CONFIG = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "default.py")

_ASSIGN = re.compile(r"^\s*(?:c|config)\.([A-Za-z_][\w.]*)\s*=.*?#\s?(.*)$")
_FIELD = re.compile(r"^\s+([A-Za-z_]\w*)\s*:[^=#]+=.*?#\s?(.*)$")
_CONTINUED = re.compile(r"^\s+#\s?(.*)$")


def field_comments(source: str, prefix: str = "") -> dict[str, str]:
  """The trailing `# comment` of each field assignment in a config source: `c.x.y = v  # ..`
  lines of a config file, or `name: type = v  # ..` lines of a dataclass (keys get
  `prefix`, e.g. "model."). A comment-only line right below, its # aligned with the
  comment's, continues it."""
  comments: dict[str, str] = {}
  last, column = None, -1
  for line in source.splitlines():
    match = _ASSIGN.match(line) or _FIELD.match(line)
    if match:
      last, column = prefix + match.group(1), line.index("#", match.end(1))
      comments[last] = match.group(2).strip()
    elif last is not None and _CONTINUED.match(line) and line.index("#") == column:
      comments[last] += " " + _CONTINUED.match(line).group(1).strip()   # aligned below
    else:
      last = None
  return comments


def _leaves(config, prefix: str = "") -> Iterable[tuple[str, object]]:
  for key, value in config.items():
    if hasattr(value, "items"):
      yield from _leaves(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value


def config_help(config, sources: Sequence[tuple[str, str]]) -> list[str]:
  """One line per field of `config` (a ConfigDict): `--config.<field>=<value>` and its
  comment, looked up in `sources` ((source text, key prefix) pairs, first match wins)."""
  comments: dict[str, str] = {}
  for source, prefix in reversed(sources):
    comments.update(field_comments(source, prefix))
  return [f"  --config.{key}={value!r}" + (f"\n      {comments[key]}" if key in comments else "")
          for key, value in _leaves(config)]


def _config_sources(config_arg: str) -> list[tuple[str, str]]:
  """The sources whose comments describe a config file's fields: the file itself, the
  default config it may build on, and ModelConfig's fields (for model.*)."""
  from xlstm_jax.nn import config as model_config  # noqa: PLC0415 (only for --help)
  sources = []
  for path in dict.fromkeys((config_arg.partition(":")[0], DEFAULT_CONFIG)):
    if pathlib.Path(path).is_file():
      sources.append((pathlib.Path(path).read_text(), ""))
  sources.append((inspect.getsource(model_config.ModelConfig), "model."))
  return sources


def load_config(config_arg: str):
  """The ConfigDict of a `file[:argument]` config flag value (its get_config(argument))."""
  path, _, arg = config_arg.partition(":")
  if not pathlib.Path(path).is_file():
    raise ValueError(f"config file {path} does not exist")
  spec = importlib.util.spec_from_file_location(f"config_{pathlib.Path(path).stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(*([arg] if arg else []))


def help_text(usage: str, fv: flags.FlagValues, config_arg: str | None = None) -> str:
  """The program's usage, its flags (those of `fv`, with help and default) and, with
  `config_arg` (a --config value), every field of that config with its comment."""
  lines = [usage.strip(), "", "flags:"]
  for name, flag in fv._flags().items():   # noqa: SLF001 (absl's own listing, in order)
    if name != flag.name:
      continue   # a short name
    default = "" if flag.default is None else f" (default: {flag.default_as_str})"
    lines.append(f"  --{name}: {flag.help}{default}")
  if config_arg is not None:
    lines += ["", f"config fields of {config_arg} (override any with --config.<field>=<value>):",
              *config_help(load_config(config_arg), _config_sources(config_arg))]
  return "\n".join(lines)


def parse_flags(argv: list[str], usage: str, fv: flags.FlagValues,
                with_config: bool = False) -> list[str]:
  """absl's parser for an entry point whose flags live in their own FlagValues `fv` (so
  both entry points can be imported in one process): `--help` (or -h, --helpfull) prints
  the usage, the flags and (with_config) every config field with its comment, then exits
  0; a bad flag (a value that does not parse, a missing required flag, an unknown flag or
  config field) prints one line naming it and exits 2. With with_config, `fv` has a
  config file flag "config" defined with no default (config_flags would load a default at
  definition, with sys.argv's overrides); DEFAULT_CONFIG is used when --config is not
  given. What `fv` does not know goes to absl's global flags (logging: --verbosity,
  --logtostderr, ...)."""
  if any(a in ("--help", "-h", "--helpfull", "-help") for a in argv[1:]):
    config_arg = DEFAULT_CONFIG
    for arg in argv[1:]:
      if arg.startswith("--config="):
        config_arg = arg.split("=", 1)[1]
    try:
      print(help_text(usage, fv, config_arg if with_config else None))
    except ValueError as err:
      print(f"error: {err}", file=sys.stderr)
      raise SystemExit(2) from None
    raise SystemExit(0)
  if with_config:
    if not any(a == "--config" or a.startswith("--config=") for a in argv[1:]):
      argv = [argv[0], f"--config={DEFAULT_CONFIG}", *argv[1:]]
    # config_flags reads the --config.* overrides from sys.argv unless told this argv
    fv["config"]._sys_argv = list(argv)   # noqa: SLF001
  try:
    fv.unparse_flags()   # from the defaults, also after an earlier (failed) parse
    for name in [n for n in fv if n.startswith("config.")]:
      delattr(fv, name)   # config_flags defines a flag per override at each parse
    rest = fv(argv, known_only=True)
    return flags.FLAGS(rest, known_only=False)
  except flags.Error as err:
    message = " ".join(str(err).split()) or type(err).__name__
  except (AttributeError, KeyError) as err:
    overrides = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.")]
    message = (f"an override names a config field that does not exist ({err}); overrides "
               f"given: {overrides}")
  except ValueError as err:   # a config file's get_config refusing its argument
    message = " ".join(str(err).split())
  print(f"error: {message} (see --help)", file=sys.stderr)
  raise SystemExit(2)


def run_or_exit(fn: Callable, *args, **kwargs):
  """fn(*args, **kwargs); a ValueError (a refused config) or a FloatingPointError (a diverged
  run, named as such) is printed as one `error: ...` line on stderr, without a traceback,
  and exits 1."""
  try:
    return fn(*args, **kwargs)
  except (ValueError, FloatingPointError) as err:
    kind = "" if isinstance(err, ValueError) else f"{type(err).__name__}: "   # a divergence
    print(f"error: {kind}{' '.join(str(err).split())}", file=sys.stderr)
    raise SystemExit(1) from None
