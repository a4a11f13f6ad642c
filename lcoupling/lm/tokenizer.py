# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Tokenizers: a thin wrapper of Hugging Face ``tokenizers`` with ids and chat templates.

:class:`Tokenizer` holds a :class:`tokenizers.Tokenizer` and what a decoder
needs besides it: the ``bos`` / ``eos`` ids (several end-of-sequence ids are
allowed, e.g. Llama 3's ``<|eot_id|>`` and ``<|end_of_text|>``), whether the
checkpoint prepends ``bos`` to a text, and the chat template shipped with the
checkpoint, rendered with jinja2 the way Hugging Face ``transformers``
renders it (sandboxed environment, ``trim_blocks`` and ``lstrip_blocks``,
``raise_exception``; variables ``messages``, ``add_generation_prompt``,
``bos_token``, ``eos_token``).

:func:`from_gguf_metadata` rebuilds a byte-level BPE tokenizer (GGUF
``tokenizer.ggml.model = "gpt2"``) from a GGUF file's vocabulary, merges and
token types; the pre-tokenizer is chosen by ``tokenizer.ggml.pre`` (the regex
llama.cpp and the Hugging Face ``tokenizer.json`` use for that family, see
:data:`GGUF_PRE_TOKENIZERS`). Control tokens (token type 3) become special
added tokens, so ``<|im_start|>`` in a chat prompt encodes as one id.
:func:`from_hf_dir` reads a Hugging Face checkpoint's ``tokenizer.json`` and
``tokenizer_config.json``.

Example:
  >>> from tokenizers import models
  >>> vocab = {"<s>": 0, "</s>": 1, "a": 2, "b": 3, "ab": 4, "Ġ": 5}
  >>> tok = from_gguf_metadata({
  ...     "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2",
  ...     "tokenizer.ggml.tokens": list(vocab), "tokenizer.ggml.merges": ["a b"],
  ...     "tokenizer.ggml.token_type": [3, 3, 1, 1, 1, 1],
  ...     "tokenizer.ggml.bos_token_id": 0, "tokenizer.ggml.eos_token_id": 1,
  ...     "tokenizer.chat_template": "{% for m in messages %}<s>{{ m['content'] }}</s>{% endfor %}"})
  >>> tok.encode("abab</s>")
  [4, 4, 1]
  >>> tok.decode([4, 5, 2])
  'ab a'
  >>> tok.apply_chat_template([{"role": "user", "content": "ab"}], add_generation_prompt=False)
  '<s>ab</s>'
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import tokenizers
from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers

__all__ = ["Tokenizer", "from_gguf_metadata", "from_hf_dir", "GGUF_PRE_TOKENIZERS"]

_LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
                 r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
                r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def _byte_level(use_regex=True):
  return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)


def _split_then_bytes(regex):
  return pre_tokenizers.Sequence([
      pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
      _byte_level(use_regex=False)])


#: ``tokenizer.ggml.pre`` -> (normalizer, pre-tokenizer) factories, as in the
#: families' Hugging Face ``tokenizer.json`` (and llama.cpp's pre-tokenizer regexes).
GGUF_PRE_TOKENIZERS = {
    "gpt-2": (lambda: None, _byte_level),
    # SmolLM / SmolLM2: single digits, then GPT-2 byte-level splitting.
    "smollm": (lambda: None, lambda: pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True), _byte_level()])),
    "llama-bpe": (lambda: None, lambda: _split_then_bytes(_LLAMA3_REGEX)),
    "llama3": (lambda: None, lambda: _split_then_bytes(_LLAMA3_REGEX)),
    "qwen2": (normalizers.NFC, lambda: _split_then_bytes(_QWEN2_REGEX)),
}

_CONTROL, _USER_DEFINED = 3, 4


def _token_content(tok: Any) -> str | None:
  """A special-token entry of ``tokenizer_config.json`` (a string or ``{"content": ...}``)."""
  if isinstance(tok, Mapping):
    return tok.get("content")
  return tok


class Tokenizer:
  """A ``tokenizers.Tokenizer`` with bos / eos ids, a bos policy and a chat template.

  Args:
    tokenizer: the Hugging Face tokenizer (its own post-processor is not used:
      :meth:`encode` adds ``bos`` itself when ``add_bos``).
    bos_id: beginning-of-sequence id, or ``None``.
    eos_ids: end-of-sequence ids (the first is :attr:`eos_id`; generation stops at any).
    add_bos: :meth:`encode` prepends ``bos_id`` by default.
    chat_template: jinja2 source of the checkpoint's chat template, or ``None``.
    pad_id: padding id (default: the first eos id).
  """

  def __init__(self, tokenizer: tokenizers.Tokenizer, *, bos_id: int | None,
               eos_ids: Sequence[int], add_bos: bool = False, chat_template: str | None = None,
               pad_id: int | None = None):
    self.hf = tokenizer
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    eos_ids = tuple(dict.fromkeys(int(i) for i in eos_ids))
    for name, ids in (("bos_id", () if bos_id is None else (bos_id,)), ("eos_ids", eos_ids)):
      for i in ids:
        if not 0 <= i < size:
          raise ValueError(f"Tokenizer {name}: id {i} outside the vocabulary [0, {size})")
    if add_bos and bos_id is None:
      raise ValueError("Tokenizer: add_bos=True needs a bos_id")
    self.bos_id = None if bos_id is None else int(bos_id)
    self.eos_ids = eos_ids
    self.add_bos = bool(add_bos)
    self.chat_template = chat_template
    self.pad_id = int(pad_id) if pad_id is not None else (eos_ids[0] if eos_ids else 0)
    self._template = None

  # -- ids --------------------------------------------------------------------

  @property
  def vocab_size(self) -> int:
    """Number of ids the tokenizer can produce (a model's vocabulary may be larger)."""
    return self.hf.get_vocab_size(with_added_tokens=True)

  @property
  def eos_id(self) -> int | None:
    return self.eos_ids[0] if self.eos_ids else None

  @property
  def special_ids(self) -> frozenset[int]:
    """Ids of the special (control) tokens."""
    return frozenset(i for i, t in self.hf.get_added_tokens_decoder().items() if t.special)

  def token_to_id(self, token: str) -> int | None:
    return self.hf.token_to_id(token)

  def id_to_token(self, i: int) -> str | None:
    return self.hf.id_to_token(int(i))

  def _token(self, i):
    return None if i is None else self.hf.id_to_token(i)

  @property
  def bos_token(self) -> str | None:
    return self._token(self.bos_id)

  @property
  def eos_token(self) -> str | None:
    return self._token(self.eos_id)

  # -- text -------------------------------------------------------------------

  def encode(self, text: str, *, add_bos: bool | None = None) -> list[int]:
    """Token ids of ``text`` (special tokens written in the text map to their ids).

    Args:
      text: the text.
      add_bos: prepend ``bos_id``; default: the checkpoint's policy (:attr:`add_bos`).
    """
    if not isinstance(text, str):
      raise TypeError(f"encode: text must be a str, got {type(text).__name__}")
    ids = self.hf.encode(text, add_special_tokens=False).ids
    if self.add_bos if add_bos is None else add_bos:
      if self.bos_id is None:
        raise ValueError("encode: add_bos=True but the tokenizer has no bos token")
      ids = [self.bos_id] + ids
    return ids

  def decode(self, ids, *, skip_special_tokens: bool = False) -> str:
    """The text of ``ids`` (a sequence or 1-D array of ints)."""
    ids = [int(i) for i in ids]
    bad = [i for i in ids if not 0 <= i < self.vocab_size]
    if bad:
      raise ValueError(f"decode: token ids must lie in [0, {self.vocab_size}), got {bad[:8]}")
    return self.hf.decode(ids, skip_special_tokens=skip_special_tokens)

  # -- chat -------------------------------------------------------------------

  def apply_chat_template(self, messages: Sequence[Mapping[str, str]], *,
                          add_generation_prompt: bool = True, **extra) -> str:
    """Renders a conversation with the checkpoint's chat template (as ``transformers`` does).

    Args:
      messages: ``[{"role": "system" | "user" | "assistant", "content": str}, ...]``.
      add_generation_prompt: end with the header of the assistant's turn.
      **extra: further template variables (e.g. ``tools``).
    """
    if self.chat_template is None:
      raise ValueError("apply_chat_template: this checkpoint ships no chat template; pass "
                       "plain text (no --chat)")
    for i, m in enumerate(messages):
      if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
        raise ValueError(f"apply_chat_template: messages[{i}] must be a mapping with 'role' and "
                         f"'content', got {m!r}")
    if self._template is None:
      self._template = _compile_template(self.chat_template)
    return self._template.render(messages=list(messages),
                                 add_generation_prompt=add_generation_prompt,
                                 bos_token=self.bos_token or "", eos_token=self.eos_token or "",
                                 **extra)

  def encode_chat(self, messages, *, add_generation_prompt: bool = True) -> list[int]:
    """Token ids of the rendered conversation (the template writes any ``bos`` itself)."""
    return self.encode(self.apply_chat_template(messages,
                                                add_generation_prompt=add_generation_prompt),
                       add_bos=False)

  def __repr__(self):
    return (f"Tokenizer(vocab_size={self.vocab_size}, bos_id={self.bos_id}, "
            f"eos_ids={self.eos_ids}, add_bos={self.add_bos}, "
            f"chat_template={'yes' if self.chat_template else 'no'})")


def _compile_template(source: str):
  """The jinja2 environment of ``transformers``' chat templates."""
  import jinja2
  from jinja2 import sandbox

  def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

  def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)

  def strftime_now(fmt):
    import datetime
    return datetime.datetime.now().strftime(fmt)

  env = sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                              extensions=["jinja2.ext.loopcontrols"])
  env.filters["tojson"] = tojson
  env.globals["raise_exception"] = raise_exception
  env.globals["strftime_now"] = strftime_now
  try:
    return env.from_string(source)
  except jinja2.exceptions.TemplateSyntaxError as e:
    raise ValueError(f"the checkpoint's chat template is not valid jinja2: {e}") from e


# ----------------------------------------------------------------------------
# Builders.
# ----------------------------------------------------------------------------


def from_gguf_metadata(meta: Mapping[str, Any]) -> Tokenizer:
  """Rebuilds the tokenizer stored in a GGUF file's metadata (byte-level BPE).

  Args:
    meta: the GGUF key/value metadata as Python values (``tokenizer.ggml.*`` and
      ``tokenizer.chat_template``), e.g. from :func:`lcoupling.lm.gguf_io.read_metadata`.

  Raises:
    ValueError: an unsupported ``tokenizer.ggml.model`` or ``tokenizer.ggml.pre``
      (named), or missing vocabulary fields.
  """
  kind = meta.get("tokenizer.ggml.model")
  if kind != "gpt2":
    raise ValueError(f"unsupported GGUF tokenizer model tokenizer.ggml.model = {kind!r} (only "
                     "'gpt2', byte-level BPE, is supported; load the Hugging Face checkpoint "
                     "with 'hf:DIR' instead)")
  pre = meta.get("tokenizer.ggml.pre", "gpt-2")
  if pre not in GGUF_PRE_TOKENIZERS:
    raise ValueError(f"unsupported GGUF pre-tokenizer tokenizer.ggml.pre = {pre!r}; supported: "
                     f"{sorted(GGUF_PRE_TOKENIZERS)}")
  for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
    if key not in meta:
      raise ValueError(f"GGUF metadata has no {key}: cannot rebuild the tokenizer")
  tokens = list(meta["tokenizer.ggml.tokens"])
  types = list(meta.get("tokenizer.ggml.token_type", [1] * len(tokens)))
  if len(types) != len(tokens):
    raise ValueError(f"GGUF tokenizer.ggml.token_type has {len(types)} entries for "
                     f"{len(tokens)} tokens")
  vocab = {}
  for i, t in enumerate(tokens):
    vocab.setdefault(t, i)
  merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
  tok = tokenizers.Tokenizer(models.BPE(vocab, merges, fuse_unk=False, byte_fallback=False))
  make_norm, make_pre = GGUF_PRE_TOKENIZERS[pre]
  norm = make_norm()
  if norm is not None:
    tok.normalizer = norm
  tok.pre_tokenizer = make_pre()
  tok.decoder = decoders.ByteLevel()
  added = [AddedToken(tokens[i], special=types[i] == _CONTROL, normalized=False)
           for i in range(len(tokens)) if types[i] in (_CONTROL, _USER_DEFINED)]
  specials = [a for a in added if a.special]
  if specials:
    tok.add_special_tokens(specials)
  others = [a for a in added if not a.special]
  if others:
    tok.add_tokens(others)
  bos = meta.get("tokenizer.ggml.bos_token_id")
  eos = [meta[k] for k in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id")
         if k in meta]
  return Tokenizer(tok, bos_id=None if bos is None else int(bos), eos_ids=eos,
                   add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", False)) and bos is not None,
                   chat_template=meta.get("tokenizer.chat_template"),
                   pad_id=meta.get("tokenizer.ggml.padding_token_id"))


def _read_json(path: pathlib.Path) -> dict:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e})") from e


def from_hf_dir(directory: os.PathLike | str, *, extra_eos_ids: Sequence[int] = ()) -> Tokenizer:
  """The tokenizer of a Hugging Face checkpoint directory.

  Reads ``tokenizer.json`` (required), ``tokenizer_config.json`` (bos / eos
  tokens, ``add_bos_token``, ``chat_template``) and ``chat_template.jinja`` when
  present (newer checkpoints store the template there).

  Args:
    directory: the checkpoint directory.
    extra_eos_ids: more end-of-sequence ids (``config.json`` /
      ``generation_config.json``'s ``eos_token_id``).
  """
  d = pathlib.Path(directory)
  path = d / "tokenizer.json"
  if not path.is_file():
    raise FileNotFoundError(f"{path}: not found (a Hugging Face checkpoint directory needs "
                            "tokenizer.json)")
  try:
    tok = tokenizers.Tokenizer.from_file(str(path))
  except Exception as e:  # tokenizers raises a bare Exception on bad files
    raise ValueError(f"{path}: cannot be read by tokenizers ({e})") from e
  cfg_path = d / "tokenizer_config.json"
  cfg = _read_json(cfg_path) if cfg_path.is_file() else {}

  def token_id(key):
    content = _token_content(cfg.get(key))
    if content is None:
      return None
    i = tok.token_to_id(content)
    if i is None:
      raise ValueError(f"{cfg_path}: {key} {content!r} is not in the vocabulary")
    return i

  bos, eos = token_id("bos_token"), token_id("eos_token")
  if "add_bos_token" in cfg:
    add_bos = bool(cfg["add_bos_token"]) and bos is not None
  else:  # what tokenizer.json's post-processor does
    add_bos = bos is not None and tok.encode("a", add_special_tokens=True).ids[:1] == [bos]
  template = None
  jinja = d / "chat_template.jinja"
  if jinja.is_file():
    template = jinja.read_text(encoding="utf-8")
  else:
    template = cfg.get("chat_template")
    if isinstance(template, list):  # named templates: use "default"
      named = {t.get("name"): t.get("template") for t in template}
      template = named.get("default", next(iter(named.values()), None))
  eos_ids = ([] if eos is None else [eos]) + [int(i) for i in extra_eos_ids]
  return Tokenizer(tok, bos_id=bos, eos_ids=eos_ids, add_bos=add_bos, chat_template=template,
                   pad_id=token_id("pad_token"))
