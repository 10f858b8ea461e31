"""Golden features of the official FID Inceptions on seeded weights.

Runs, on the weights of `zoo/convert/seeded.py` in the layout of pytorch-fid's
`pt_inception-2015-12-05-6726825d.pth`, tweaked by `inception_common.tweak`:
  - pytorch-fid 0.3.0: `InceptionV3([3], resize_input=True, normalize_input=True,
    use_fid_inception=True)` for the pool features, and the `fc` of `fid_inception_v3()` on them
    for the logits (InceptionV3 drops the fc). Input: uint8 / 255, NCHW.
  - torch-fidelity 0.4.0: `FeatureExtractorInceptionV3` (uint8 input, TF1 bilinear resize,
    (x - 128) / 128) in float32 (its default) and in float64 (what TiTok's
    evaluator/inception.py hard-codes; torch-fidelity's own feature_extractor_internal_dtype=
    "float64" silently stays float32 in 0.4.0, so the module is cast here as TiTok's copy does).
    Its outputs are float32 in both cases (it casts them).
  - with --official_repo: TiTok's evaluator/inception.py, only checked to equal torch-fidelity's
    float64 run (it is a copy of it).
on the uint8 photos of `inception_common.photo_cases`. Nothing is downloaded: pytorch-fid's and
TiTok's `load_state_dict_from_url` are replaced by the seeded state dict, and torch-fidelity
reads it from a temporary file (its `feature_extractor_weights_path`). It also checks that
pytorch-fid and torch-fidelity build the same state-dict layout.

  python3.11 -m venv /tmp/fidvenv
  /tmp/fidvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy scikit-image
  /tmp/fidvenv/bin/pip install pytorch-fid==0.3.0 torch-fidelity==0.4.0
  /tmp/fidvenv/bin/python tests/golden/make_inception_golden.py \
      [--official_repo /tmp/official/1d-tokenizer]

(pytorch-fid imports torchvision, whose PyPI wheel does not load beside the local torch 2.13.0
CPU wheel: hence the torch 2.14.1 + torchvision 0.29.1 pair that pip finds on this machine.)

Writes, next to this file:
  inception_shapes.json  {key: shape} of the released file's layout as torch 2.x builds it
                         (with the 94 `bn.num_batches_tracked` scalars)
  inception_fid.npz      per reference R in (pytorch_fid, fidelity_f32, fidelity_f64) and photo
                         case C: R__C__pool [B, 256] and R__C__logits [B, 126] (every
                         FEATURE_STRIDE-th of the 2048 / 1008), R__C__pool_norm and
                         R__C__logits_norm [B] (L2 norms of the full vectors)
"""
import argparse
import importlib
import json
import pathlib
import sys
import tempfile
from unittest import mock

import numpy as np
import torch

from golden_common import load_module, load_seeded_module

HERE = pathlib.Path(__file__).resolve().parent
SEED = 0
common = load_module("inception_common", HERE / "inception_common.py")


def official_shapes(pfi) -> dict:
  """{key: shape} of fid_inception_v3(), read with its weight loading stubbed out."""
  shapes = {}

  def capture(module, state_dict, *args, **kwargs):
    del state_dict, args, kwargs
    shapes.update({k: tuple(v.shape) for k, v in module.state_dict().items()})

  with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: None), \
       mock.patch.object(torch.nn.Module, "load_state_dict", capture):
    pfi.fid_inception_v3()
  return shapes


def seeded_torch_state(shapes) -> dict:
  state = common.tweak(load_seeded_module().seeded_state_dict(shapes, SEED))
  return {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}


def keep(pool, logits) -> dict:
  pool, logits = (np.asarray(t.detach().double().numpy()) for t in (pool, logits))
  s = common.FEATURE_STRIDE
  return {"pool": pool[:, ::s].astype(np.float32), "logits": logits[:, ::s].astype(np.float32),
          "pool_norm": np.linalg.norm(pool, axis=1).astype(np.float32),
          "logits_norm": np.linalg.norm(logits, axis=1).astype(np.float32)}


def run_pytorch_fid(pfi, state, cases) -> dict:
  with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state):
    net = pfi.InceptionV3([3], resize_input=True, normalize_input=True,
                          use_fid_inception=True).eval()
    fc = pfi.fid_inception_v3().fc.eval()
  out = {}
  with torch.no_grad():
    for name, images in cases.items():
      x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0  # as ToTensor() does
      pool = net(x)[0][:, :, 0, 0]
      out[name] = keep(pool, fc(pool))
  return out


def fidelity_features(extractor, cases) -> dict:
  out = {}
  with torch.no_grad():
    for name, images in cases.items():
      pool, logits = extractor(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
      out[name] = (pool, logits)
  return out


def run_torch_fidelity(state, cases, weights_path) -> dict:
  from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
  torch.save(state, weights_path)
  runs = {}
  for dtype in (torch.float32, torch.float64):
    extractor = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits"], feature_extractor_weights_path=weights_path)
    if set(extractor.state_dict()) != set(state):
      raise SystemExit("torch-fidelity's and pytorch-fid's Inceptions differ in layout")
    # feature_extractor_internal_dtype="float64" is a no-op in torch-fidelity 0.4.0 (its
    # text_to_dtype maps "float64" to torch.float32), so float64 is set as TiTok's copy sets it.
    extractor.feature_extractor_internal_dtype = dtype
    runs[str(dtype)[-7:]] = fidelity_features(extractor.to(dtype), cases)
  return runs


def check_titok_copy(repo, state, cases, reference):
  """TiTok's evaluator/inception.py (float64 copy of torch-fidelity's) gives the same features."""
  sys.path.insert(0, str(repo))
  titok = importlib.import_module("evaluator.inception")
  with mock.patch.object(titok, "load_state_dict_from_url", lambda *a, **k: state):
    model = titok.get_inception_model()
  with torch.no_grad():
    for name, images in cases.items():
      feats = model(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
      pool, logits = reference[name]
      # torch-fidelity returns its float64 features cast to float32; TiTok's copy does not.
      scale = float(pool.abs().max())
      np.testing.assert_allclose(feats["2048"].numpy(), pool.numpy(), rtol=0, atol=1e-7 * scale)
      # TiTok asks for logits_unbiased: the logits minus the fc bias.
      unbiased = (logits - model.fc.bias.float()).numpy()
      np.testing.assert_allclose(feats["logits_unbiased"].numpy(), unbiased, rtol=0,
                                 atol=1e-6 * np.abs(unbiased).max())
  print("TiTok's evaluator/inception.py == torch-fidelity float64 (to its float32 output)")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--official_repo", type=pathlib.Path, default=None,
                      help="a checkout of github.com/bytedance/1d-tokenizer (optional check)")
  args = parser.parse_args()
  import pytorch_fid.inception as pfi

  shapes = official_shapes(pfi)
  state = seeded_torch_state(shapes)
  cases = common.photo_cases()
  golden = {"pytorch_fid": run_pytorch_fid(pfi, state, cases)}
  with tempfile.TemporaryDirectory() as tmp:
    fidelity = run_torch_fidelity(state, cases, pathlib.Path(tmp) / "seeded_inception.pth")
  for dtype, runs in fidelity.items():
    golden[f"fidelity_f{dtype[-2:]}"] = {name: keep(*feats) for name, feats in runs.items()}
  if args.official_repo is not None:
    check_titok_copy(args.official_repo, state, cases, fidelity["float64"])

  arrays = {f"{ref}__{case}__{key}": value for ref, per_case in golden.items()
            for case, feats in per_case.items() for key, value in feats.items()}
  np.savez_compressed(HERE / "inception_fid.npz", **arrays)
  lines = [f"  {json.dumps(k)}: {json.dumps(list(v))}" for k, v in sorted(shapes.items())]
  (HERE / "inception_shapes.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
  for case in cases:
    a, b = (np.asarray(golden[r][case]["pool"]) for r in ("fidelity_f32", "pytorch_fid"))
    c = np.asarray(golden["fidelity_f64"][case]["pool"])
    print(f"{case}: pool |f32 - f64| / max {np.abs(a - c).max() / np.abs(c).max():.2e}, "
          f"|tf1 - pytorch_fid| / max {np.abs(a - b).max() / np.abs(b).max():.2e}")
  print(f"wrote {len(arrays)} arrays to {HERE / 'inception_fid.npz'}")


if __name__ == "__main__":
  main()
