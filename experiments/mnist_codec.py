# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Compress / decompress demo: one MNIST test image, K decoders with different side information.

The encoder sees the right half of test image ``--image_index`` and writes a
message file: a payload of ``log2 L_max`` bits (packed into whole bytes,
:func:`lcoupling.compression.pack_labels`; what the rate counts) framed by a
versioned header and a CRC-32 (:mod:`lcoupling.compression.message`; 24 bytes +
the context JSON: 164-168 bytes here). Each of the ``K`` decoders holds its
own random crop of the left half, reads the message and reconstructs the right
half; a decoder whose parameters (``--num_bins``, ``--num_decoders``,
``--num_codewords``, ``--scheme``, ``--beta``, ``--image_index``, the config's
crop size, seed or model) differ from the encoder's, or a corrupt file, is
refused with an error naming the field. The result is drawn to
``OUT_DIR/codec_demo.png`` (and summarised in ``OUT_DIR/summary.json``)::

  python -m experiments.run --config mnist:quick --workdir runs/mnist_quick    # the study (trains)
  python -m experiments.mnist_codec --config mnist:quick --workdir runs/mnist_quick --out_dir d
  python -m experiments.mnist_codec --config mnist:quick --workdir runs/mnist_quick --mode encode --out_dir d
  python -m experiments.mnist_codec --config mnist:quick --workdir runs/mnist_quick --mode decode --out_dir d

The VAE of ``--beta`` (default ``config.fixed_beta``) is loaded from the
study's checkpoints, ``config.checkpoint_dir``: by default
``{workdir}/checkpoints``, so ``--workdir`` names the study's work directory
(``--config.checkpoint_dir=DIR`` instead works too). Run the study first, or
pass ``--train`` to train the VAE here. ``--config`` takes a built-in config by
name (``mnist:quick``, ``cifar10``) or a path, and ``--config.FIELD=VALUE``
overrides a field, as ``python -m experiments.run``. Errors print one line
``error: ...`` (exit status 2 for usage, 1 otherwise; ``--traceback`` shows
the traceback). Encoder and decoders share only the seed: the
codec's shared randomness is that of the study's trial for (repeat 0, this
image), ``fold_in(trial_key, 0)``, and decoder ``k``'s crop is the study's crop
``k``, so the demo reproduces exactly what the study measured for that image.
"""

from __future__ import annotations

import pathlib
import sys

from absl import flags

from lcoupling import cli
from lcoupling import results as results_lib

FLAGS = flags.FlagValues()
flags.DEFINE_string("config", "mnist:quick", "Study config: NAME[:variant] (mnist, cifar10) or "
                    "path/to/config.py[:variant]; override fields with --config.FIELD=VALUE.",
                    flag_values=FLAGS)
flags.DEFINE_string("workdir", None, "The study's work directory (python -m experiments.run "
                    "--workdir): resolves {workdir} in the config, so the VAE is read from "
                    "WORKDIR/checkpoints.", flag_values=FLAGS)
flags.DEFINE_string("out_dir", "runs/mnist_codec_demo", "Output directory.", flag_values=FLAGS)
flags.DEFINE_enum("mode", "demo", ["demo", "encode", "decode"],
                  "encode: write the message; decode: read it and reconstruct; demo: both.",
                  flag_values=FLAGS)
flags.DEFINE_string("message", None, "Message file (default OUT_DIR/message.bin).", flag_values=FLAGS)
flags.DEFINE_float("beta", None, "Which trained VAE (default config.fixed_beta).", flag_values=FLAGS)
flags.DEFINE_integer("image_index", 0, "Test image index (0..9999).", flag_values=FLAGS)
flags.DEFINE_integer("num_bins", 16, "L_max (power of two <= max(config.num_bins)): the message "
                     "has log2 L_max bits.", flag_values=FLAGS)
flags.DEFINE_integer("num_decoders", 4, "K decoders (each with its own crop).", flag_values=FLAGS)
flags.DEFINE_integer("num_codewords", None, "N (default config.fixed_num_codewords).",
                     flag_values=FLAGS)
flags.DEFINE_enum("scheme", "gls", ["gls", "baseline"], "Codec scheme.", flag_values=FLAGS)
flags.DEFINE_bool("train", False, "Train (or resume) the VAE if it is missing.", flag_values=FLAGS)
flags.DEFINE_bool("traceback", False, "Show the full traceback of an error instead of one line.",
                  flag_values=FLAGS)

USAGE = ("usage: python -m experiments.mnist_codec --config NAME[:variant] --workdir STUDY_WORKDIR "
         "[--out_dir DIR] [--mode demo|encode|decode] [--config.FIELD=VALUE ...]")


def resolve_config(config, workdir=None):
  """``config`` with ``{workdir}`` resolved under ``workdir`` (the study's work directory).

  Raises ``ValueError`` naming the field and the fix when a ``{workdir}``
  placeholder is left (no ``workdir`` and no explicit path), so nothing is read
  from or written to a directory literally named ``{workdir}``.
  """
  from lcoupling import runner  # noqa: PLC0415

  if workdir:
    config = runner.resolve_workdir_paths(config, workdir)
  for field, value in runner.unresolved_workdir_fields(config).items():
    raise ValueError(
        f"config.{field} = {value!r} lies in the study's work directory: pass --workdir DIR, the "
        f"--workdir the study ran with (python -m experiments.run --config ... --workdir DIR), or "
        f"--config.{field}=PATH")
  return config


def model_fingerprint(model) -> str:
  """First 16 hex digits of the sha256 of the model's parameters (decoders must hold the same model)."""
  import hashlib  # noqa: PLC0415

  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415
  from flax import nnx  # noqa: PLC0415

  h = hashlib.sha256()
  for path, leaf in sorted(jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(nnx.state(model)))[0],
                           key=lambda x: jax.tree_util.keystr(x[0])):
    h.update(jax.tree_util.keystr(path).encode())
    h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
  return h.hexdigest()[:16]


def run_codec(config, out_dir, *, mode="demo", message_path=None, beta=None, image_index=0,
              num_bins=16, num_decoders=4, num_codewords=None, scheme="gls", train=False) -> dict:
  """Encodes and/or decodes one test image; returns the summary (also written to JSON).

  The message file is a self-describing message
  (:func:`lcoupling.compression.pack_message`): its header holds the codec's
  parameters (scheme, K, N, L_max, L) and a context with everything else that
  decoding depends on (study, dataset, β, test image, crop size, seed, PRNG,
  model fingerprint), and a CRC-32. Decoding with any other parameter, or a
  corrupt file, raises :class:`lcoupling.compression.MessageError` naming the
  field. ``summary["payload_bytes"]`` is what the rate counts (``log2 L_max``
  bits, padded to whole bytes), ``summary["header_bytes"]`` the framing.
  """
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from lcoupling import data as data_lib  # noqa: PLC0415
  from lcoupling.compression import codec, message  # noqa: PLC0415
  from lcoupling.compression import vae  # noqa: PLC0415
  from lcoupling.studies import image_codec as study  # noqa: PLC0415

  study.validate(config)
  beta = float(config.fixed_beta if beta is None else beta)
  n = int(config.fixed_num_codewords if num_codewords is None else num_codewords)
  max_bins = int(max(config.num_bins))
  codec.check_num_bins(num_bins, "--num_bins", max_bins)
  num_test = study.dataset_of(config).split_sizes["test"]
  if not 0 <= image_index < num_test:
    raise ValueError(f"--image_index must be in 0..{num_test - 1}, got {image_index}")
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  message_path = pathlib.Path(message_path) if message_path else out_dir / "message.bin"

  context = {"study": str(config.study), "dataset": study.dataset_of(config).name, "beta": beta,
             "image_index": int(image_index), "crop_size": int(config.crop_size),
             "seed": int(config.seed), "prng_impl": str(config.prng_impl)}
  if mode == "decode":  # refuse a mismatched message before loading anything
    stored, _ = message.unpack_message(message_path.read_bytes())
    message.unpack_message(message_path.read_bytes(), message.MessageHeader(
        scheme, int(num_decoders), n, int(num_bins), max_bins, 1,
        {**context, "model": stored.context.get("model")}))
  model, _ = study.load_model(config, beta, train_if_missing=train, progress=True)
  context["model"] = model_fingerprint(model)
  images = data_lib.load_images(study.dataset_of(config).name, config.data_dir,
                                f"test[{image_index}:{image_index + 1}]", config.data_source)
  image = jnp.asarray(images[0])
  key = jax.random.key(config.seed, impl=config.prng_impl)
  tkey = study.trial_key(key, 0, image_index)
  seed = jax.random.fold_in(tkey, study.CODEC_SEED)
  spec = study.codec_spec(n, num_decoders, max_bins, scheme, model.latent_dim)
  source, crops, posterior = study.trial_inputs(tkey, image, model, num_decoders=num_decoders,
                                                crop_size=int(config.crop_size))
  bits = int(num_bins).bit_length() - 1
  header = message.MessageHeader.for_spec(spec, num_bins=num_bins, count=1, context=context)
  summary = {"image_index": image_index, "beta": beta, "N": n, "K": num_decoders,
             "L_max": int(num_bins), "bits": bits, "scheme": scheme,
             "message_file": str(message_path), "payload_bytes": codec.message_length(1, num_bins),
             "header_bytes": message.header_size(header)}

  if mode in ("demo", "encode"):
    data = message.encode_message(seed[None], spec, vae.posterior_log_weights, posterior[None],
                                  num_bins=num_bins, context=context)
    results_lib.atomic_write_bytes(message_path, data)
    label = int(codec.unpack_labels(message.unpack_message(data)[1], num_bins, 1)[0])
    print(f"encoded test image {image_index}: payload {label:0{bits}b} ({bits} bits = log2 {num_bins}) "
          f"-> {message_path} ({len(data)} bytes: {summary['payload_bytes']} payload + "
          f"{summary['header_bytes']} header and checksum)")
  if mode == "encode":
    summary["message_bits"] = f"{label:0{bits}b}"
    results_lib.atomic_write_json(out_dir / "summary.json", summary)
    return summary

  data = message_path.read_bytes()
  _, payload = message.unpack_message(data, header)  # refuses any mismatch, naming the field
  label = int(codec.unpack_labels(payload, num_bins, 1)[0])
  shared = codec.shared_randomness(seed, spec)
  dec_fn = vae.DecoderLogWeights(model.estimator)
  enc_index = int(codec.encoder_index(seed, spec, vae.posterior_log_weights, posterior)[0])
  recons, idxs = [], []
  for k in range(num_decoders):
    idx = int(message.decode_message(seed[None], spec, data, dec_fn, crops[k][None],
                                     num_bins=num_bins, decoder=k, context=context)[0])
    idxs.append(idx)
    recons.append(np.asarray(vae.reconstruct(model, shared.codebook[idx][None], crops[k][None]))[0])
  recons = np.stack(recons)
  mse_pm1 = ((recons - np.asarray(source)) ** 2).mean(axis=tuple(range(1, recons.ndim)))
  mse = mse_pm1 * study.PM1_TO_01  # on [0, 1] pixels
  match = [i == enc_index for i in idxs]
  offs = np.asarray(data_lib.crop_offsets(jax.random.fold_in(tkey, study.CROP_SEED),
                                          jnp.zeros((num_decoders,), jnp.int32),
                                          jnp.arange(num_decoders), crop_size=int(config.crop_size),
                                          geometry=data_lib.geometry_of(images.shape[1:])))
  summary.update(message_bits=f"{label:0{bits}b}", encoder_index=enc_index, decoder_index=idxs,
                 match=match, mse=[float(v) for v in mse], mse_best=float(mse.min()),
                 mse_pm1=[float(v) for v in mse_pm1], crop_offsets=offs.tolist())
  png = out_dir / "codec_demo.png"
  _draw(png, np.asarray(images[0]), recons, offs, int(config.crop_size), match, mse, summary)
  summary["png"] = str(png)
  results_lib.atomic_write_json(out_dir / "summary.json", summary)
  print(f"decoded at {num_decoders} decoders: indices {idxs} (encoder {enc_index}), "
        f"match {match}, MSE on [0,1] pixels {[round(float(v), 4) for v in mse]}; best "
        f"{mse.min():.4f} -> {png}")
  return summary


def _draw(path, image, recons, offs, crop, match, mse, s):
  import numpy as np  # noqa: PLC0415

  from lcoupling import plotting  # noqa: PLC0415

  plt = plotting.pyplot()
  from matplotlib.patches import Rectangle  # noqa: PLC0415

  k = len(recons)
  half = image.shape[1] // 2
  gray = dict(cmap="gray") if image.ndim == 2 else {}
  fig, axes = plt.subplots(2, k + 1, figsize=(1.6 * (k + 1), 3.9), squeeze=False)
  axes[0][0].imshow(image, vmin=0, vmax=255, **gray)
  for kk, (r0, c0) in enumerate(offs):
    axes[0][0].add_patch(Rectangle((c0 - 0.5, r0 - 0.5), crop, crop, fill=False, lw=1.0, ec=f"C{kk}"))
  axes[0][0].axvline(half - 0.5, color="w", lw=0.6, ls=":")
  axes[0][0].set_title("image, crops", fontsize=7)
  axes[1][0].imshow(image[:, half:], vmin=0, vmax=255, **gray)
  axes[1][0].set_title("source (right half)", fontsize=7)
  left = image[:, :half].astype(float) / 255.0  # [0, 1]
  for kk in range(k):
    r0, c0 = offs[kk]
    axes[0][kk + 1].imshow(left[r0:r0 + crop, c0:c0 + crop], vmin=0, vmax=1, **gray)
    axes[0][kk + 1].set_title(f"decoder {kk + 1} side info", fontsize=7, color=f"C{kk}")
    ax = axes[1][kk + 1]
    ax.imshow(np.clip((recons[kk] + 1.0) / 2.0, 0, 1), vmin=0, vmax=1, **gray)
    color = "tab:green" if match[kk] else "tab:red"
    ax.set_title(f"{'match' if match[kk] else 'no match'}, MSE {mse[kk]:.3f}", fontsize=7, color=color)
    for sp in ax.spines.values():
      sp.set_edgecolor(color)
      sp.set_linewidth(2.0)
  for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle(f"test image {s['image_index']}: message '{s['message_bits']}' ({s['bits']} bits), "
               f"{s['scheme']}, N={s['N']}, β={s['beta']:g}", fontsize=8)
  fig.tight_layout()
  path = pathlib.Path(path)
  plotting.save(fig, path.with_suffix(""), formats=(path.suffix.lstrip(".") or "png",))


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv if argv is None else argv)
  overrides, status = cli.parse_flags(FLAGS, argv, usage=USAGE, doc=__doc__)
  if status is not None:
    return status
  message_path = FLAGS.message or pathlib.Path(FLAGS.out_dir) / "message.bin"
  try:
    from lcoupling.compression import MessageError  # noqa: PLC0415

    _, config = cli.load_config(FLAGS.config, overrides)
    config = resolve_config(config, FLAGS.workdir)
    run_codec(config, FLAGS.out_dir, mode=FLAGS.mode, message_path=FLAGS.message, beta=FLAGS.beta,
              image_index=FLAGS.image_index, num_bins=FLAGS.num_bins,
              num_decoders=FLAGS.num_decoders, num_codewords=FLAGS.num_codewords,
              scheme=FLAGS.scheme, train=FLAGS.train)
  except KeyboardInterrupt:
    print("\ninterrupted", file=sys.stderr)
    return 130
  except (ValueError, OSError) as e:
    if FLAGS.traceback:
      raise
    return cli.error(f"{message_path}: {e}" if isinstance(e, MessageError) else e)
  return 0


if __name__ == "__main__":
  sys.exit(main())
