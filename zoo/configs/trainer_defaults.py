"""The trainer settings every family's training config starts from (its own values override).

Family configs set what their recipe fixes (data, batch, schedule, losses, GAN); these are the
trainer's switches that most recipes leave off: warm starts, frozen parts, teacher
(stage-1 proxy codes), codebook re-anchoring, the mesh, precision and kernels.
"""
import ml_collections


def trainer_defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.frozen = ()
  c.init_from = ""
  c.pixel_decoder_from_teacher = False
  c.keep_checkpoints = 3
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))
  c.dtype = "float32"
  c.grad_accum_steps = 1
  c.kernel_impl = ""
  c.codebook_reanchor = False
  c.model_overrides = ml_collections.ConfigDict({})
  c.objective = "pixels"
  c.teacher = ""
  c.teacher_checkpoint = ""
  c.teacher_overrides = ml_collections.ConfigDict({})
  return c
