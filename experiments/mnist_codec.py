# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Compress / decompress demo: one MNIST test image, K decoders with different side information.

The encoder sees the right half of test image ``--image_index`` and writes a
message file of ``log2 L_max`` bits (packed into whole bytes,
:func:`lcoupling.compression.pack_labels`); each of the ``K`` decoders holds its
own random crop of the left half, reads the message and reconstructs the right
half. The result is drawn to ``OUT_DIR/codec_demo.png`` (and summarised in
``OUT_DIR/summary.json``)::

  python -m experiments.mnist_codec --config configs/mnist.py:quick --out_dir runs/mnist_codec_demo
  python -m experiments.mnist_codec --config configs/mnist.py:quick --mode encode --out_dir d
  python -m experiments.mnist_codec --config configs/mnist.py:quick --mode decode --out_dir d

The VAE of ``--beta`` (default ``config.fixed_beta``) is loaded from the
study's checkpoints (``config.checkpoint_dir``; run the study first, or pass
``--train`` to train it here). Encoder and decoders share only the seed: the
codec's shared randomness is that of the study's trial for (repeat 0, this
image), ``fold_in(trial_key, 0)``, and decoder ``k``'s crop is the study's crop
``k``, so the demo reproduces exactly what the study measured for that image.
"""

from __future__ import annotations

import json
import pathlib

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/mnist.py:quick", "Study config (configs/mnist.py[:quick]); fields can be "
    "overridden with --config.FIELD=VALUE (e.g. --config.checkpoint_dir).", lock_config=True)
_OUT = flags.DEFINE_string("out_dir", "runs/mnist_codec_demo", "Output directory.")
_MODE = flags.DEFINE_enum("mode", "demo", ["demo", "encode", "decode"],
                          "encode: write the message; decode: read it and reconstruct; demo: both.")
_MESSAGE = flags.DEFINE_string("message", None, "Message file (default OUT_DIR/message.bin).")
_BETA = flags.DEFINE_float("beta", None, "Which trained VAE (default config.fixed_beta).")
_INDEX = flags.DEFINE_integer("image_index", 0, "Test image index (0..9999).")
_BINS = flags.DEFINE_integer("num_bins", 16, "L_max (power of two <= max(config.num_bins)): "
                             "the message has log2 L_max bits.")
_DECODERS = flags.DEFINE_integer("num_decoders", 4, "K decoders (each with its own crop).")
_CODEWORDS = flags.DEFINE_integer("num_codewords", None, "N (default config.fixed_num_codewords).")
_SCHEME = flags.DEFINE_enum("scheme", "gls", ["gls", "baseline"], "Codec scheme.")
_TRAIN = flags.DEFINE_bool("train", False, "Train (or resume) the VAE if it is missing.")


def run_codec(config, out_dir, *, mode="demo", message_path=None, beta=None, image_index=0,
              num_bins=16, num_decoders=4, num_codewords=None, scheme="gls", train=False) -> dict:
  """Encodes and/or decodes one test image; returns the summary (also written to JSON)."""
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from lcoupling import data as data_lib  # noqa: PLC0415
  from lcoupling.compression import codec  # noqa: PLC0415
  from lcoupling.compression import vae  # noqa: PLC0415
  from lcoupling.studies import mnist  # noqa: PLC0415

  mnist.validate(config)
  beta = float(config.fixed_beta if beta is None else beta)
  n = int(config.fixed_num_codewords if num_codewords is None else num_codewords)
  max_bins = int(max(config.num_bins))
  codec.check_num_bins(num_bins, "--num_bins", max_bins)
  if not 0 <= image_index < 10_000:
    raise ValueError(f"--image_index must be in 0..9999, got {image_index}")
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  message_path = pathlib.Path(message_path) if message_path else out_dir / "message.bin"

  model, _ = mnist.load_model(config, beta, train_if_missing=train, progress=True)
  images, _ = data_lib.load_mnist(config.data_dir, f"test[{image_index}:{image_index + 1}]",
                                  source=config.data_source)
  image = jnp.asarray(images[0])
  key = jax.random.key(config.seed, impl=config.prng_impl)
  tkey = mnist.trial_key(key, 0, image_index)
  seed = jax.random.fold_in(tkey, mnist.CODEC_SEED)
  spec = mnist.codec_spec(n, num_decoders, max_bins, scheme, model.latent_dim)
  source, crops, posterior = mnist.trial_inputs(tkey, image, model, num_decoders=num_decoders,
                                                 crop_size=int(config.crop_size))
  bits = int(num_bins).bit_length() - 1
  summary = {"image_index": image_index, "beta": beta, "N": n, "K": num_decoders,
             "L_max": int(num_bins), "bits": bits, "scheme": scheme,
             "message_file": str(message_path)}

  if mode in ("demo", "encode"):
    message = codec.encode(seed[None], spec, mnist.encoder_log_weights, posterior[None],
                           num_bins=num_bins)
    message_path.write_bytes(message)
    label = int(codec.unpack_labels(message, num_bins, 1)[0])
    print(f"encoded test image {image_index}: message {label:0{bits}b} ({bits} bits = log2 {num_bins}) "
          f"-> {message_path} ({len(message)} byte(s))")
  if mode == "encode":
    summary["message_bits"] = f"{label:0{bits}b}"
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary

  message = message_path.read_bytes()
  label = int(codec.unpack_labels(message, num_bins, 1)[0])
  shared = codec.shared_randomness(seed, spec)
  dec_fn = mnist.DecoderLogWeight(model.estimator)
  enc_index = int(codec.encoder_index(seed, spec, mnist.encoder_log_weights, posterior)[0])
  recons, idxs = [], []
  for k in range(num_decoders):
    idx = int(codec.decode(seed[None], spec, message, dec_fn, crops[k][None], num_bins=num_bins,
                           decoder=k)[0])
    idxs.append(idx)
    recons.append(np.asarray(vae.reconstruct(model, shared.codebook[idx][None], crops[k][None]))[0])
  recons = np.stack(recons)
  mse = ((recons - np.asarray(source)) ** 2).mean(axis=(1, 2))
  match = [i == enc_index for i in idxs]
  offs = np.asarray(data_lib.crop_offsets(jax.random.fold_in(tkey, mnist.CROP_SEED),
                                          jnp.zeros((num_decoders,), jnp.int32),
                                          jnp.arange(num_decoders), crop_size=int(config.crop_size)))
  summary.update(message_bits=f"{label:0{bits}b}", encoder_index=enc_index, decoder_index=idxs,
                 match=match, mse=[float(v) for v in mse], mse_best=float(mse.min()),
                 crop_offsets=offs.tolist())
  png = out_dir / "codec_demo.png"
  _draw(png, np.asarray(images[0]), recons, offs, int(config.crop_size), match, mse, summary)
  summary["png"] = str(png)
  (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
  print(f"decoded at {num_decoders} decoders: indices {idxs} (encoder {enc_index}), "
        f"match {match}, MSE {[round(float(v), 4) for v in mse]}; best {mse.min():.4f} -> {png}")
  return summary


def _draw(path, image, recons, offs, crop, match, mse, s):
  from lcoupling import plotting  # noqa: PLC0415

  plt = plotting.pyplot()
  from matplotlib.patches import Rectangle  # noqa: PLC0415

  k = len(recons)
  fig, axes = plt.subplots(2, k + 1, figsize=(1.6 * (k + 1), 3.9), squeeze=False)
  axes[0][0].imshow(image, cmap="gray", vmin=0, vmax=255)
  for kk, (r0, c0) in enumerate(offs):
    axes[0][0].add_patch(Rectangle((c0 - 0.5, r0 - 0.5), crop, crop, fill=False, lw=1.0, ec=f"C{kk}"))
  axes[0][0].axvline(13.5, color="w", lw=0.6, ls=":")
  axes[0][0].set_title("image, crops", fontsize=7)
  axes[1][0].imshow(image[:, 14:], cmap="gray", vmin=0, vmax=255)
  axes[1][0].set_title("source (right half)", fontsize=7)
  left = image[:, :14].astype(float) / 127.5 - 1.0
  for kk in range(k):
    r0, c0 = offs[kk]
    axes[0][kk + 1].imshow(left[r0:r0 + crop, c0:c0 + crop], cmap="gray", vmin=-1, vmax=1)
    axes[0][kk + 1].set_title(f"decoder {kk + 1} side info", fontsize=7, color=f"C{kk}")
    ax = axes[1][kk + 1]
    ax.imshow(recons[kk], cmap="gray", vmin=-1, vmax=1)
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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  run_codec(_CONFIG.value, _OUT.value, mode=_MODE.value, message_path=_MESSAGE.value,
            beta=_BETA.value, image_index=_INDEX.value, num_bins=_BINS.value,
            num_decoders=_DECODERS.value, num_codewords=_CODEWORDS.value, scheme=_SCHEME.value,
            train=_TRAIN.value)


if __name__ == "__main__":
  app.run(main)
