"""3DShape2VecSet (1zb/3DShape2VecSet): the autoencoders of models_ae.py as registered names.

`shape2vecset_kl_d512_m512_l{1..512}` are the KL autoencoders (512 latents of `l` channels,
width 512, 24 latent blocks), `shape2vecset_ae_d{w}_m{m}` the plain ones; all take 2048
surface points in training. The weights are the authors' training checkpoints
(`checkpoint-N.pth` from the Google Drive folder the README links; no hub repo), read with
`zoo.from_pretrained("shape2vecset_kl_d512_m512_l8", checkpoint="checkpoint-199.pth")`; the
file's own `args.model` must name the same architecture. `shape2vecset_tiny` is the CPU
variant of the tests.
"""
from models.threed.shape2vecset import Shape2VecSetConfig

PREFIX = "shape2vecset_"
KL_LATENT_DIMS = (1, 2, 4, 8, 16, 32, 64, 512)
AE_SIZES = ((512, 512), (512, 256), (512, 128), (512, 64), (256, 512), (128, 512), (64, 512))

MODELS = {
    **{f"{PREFIX}kl_d512_m512_l{c}": (Shape2VecSetConfig(latent_dim=c), None)
       for c in KL_LATENT_DIMS},
    **{f"{PREFIX}ae_d{d}_m{m}": (Shape2VecSetConfig(dim=d, num_latents=m, latent_dim=None),
                                 None) for d, m in AE_SIZES},
    f"{PREFIX}tiny": (Shape2VecSetConfig(dim=32, num_latents=16, latent_dim=4, num_inputs=128,
                                         depth=2, heads=2, dim_head=16), None),
}


def official_name(name: str) -> str | None:
  """The models_ae.py function a registered release corresponds to (None for tiny)."""
  if name == f"{PREFIX}tiny" or not name.startswith(PREFIX):
    return None
  return name[len(PREFIX):]
