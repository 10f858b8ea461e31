"""The audio codecs' weight-normed convolutions against torch.nn (same weights)."""
import numpy as np
import pytest
import torch
from flax import nnx

from models.layers.audio_conv import Conv1d, Conv2d, ConvTranspose1d, Snake


def _copy_weight_norm(ours, theirs):
  ours.weight_g[...] = theirs.weight_g.detach().numpy()
  ours.weight_v[...] = theirs.weight_v.detach().numpy()
  ours.bias[...] = theirs.bias.detach().numpy()


@pytest.mark.parametrize("kernel,stride,dilation,groups,padding", [
    (7, 1, 1, 1, 3), (3, 1, 3, 1, 3), (8, 4, 1, 2, 0), (1, 1, 1, 1, 0), (7, 1, 1, 6, 3)])
def test_conv1d_matches_torch_weight_norm(kernel, stride, dilation, groups, padding):
  torch.manual_seed(0)
  theirs = torch.nn.utils.weight_norm(torch.nn.Conv1d(
      6, 12, kernel, stride=stride, dilation=dilation, groups=groups, padding=padding))
  theirs.weight_g.data.uniform_(0.5, 2.0)  # not the init value ||v||, so g really counts
  ours = Conv1d(6, 12, kernel, stride=stride, dilation=dilation, groups=groups, padding=padding,
                rngs=nnx.Rngs(0))
  _copy_weight_norm(ours, theirs)
  x = np.random.default_rng(0).normal(size=(2, 6, 37)).astype(np.float32)
  want = theirs(torch.from_numpy(x)).detach().numpy().transpose(0, 2, 1)
  np.testing.assert_allclose(ours(x.transpose(0, 2, 1)), want, atol=1e-5)


@pytest.mark.parametrize("kernel,stride,padding,output_padding,groups", [
    (16, 8, 0, 0, 1), (4, 2, 1, 0, 1), (10, 5, 3, 1, 1), (8, 4, 2, 0, 2)])
def test_conv_transpose1d_matches_torch_weight_norm(kernel, stride, padding, output_padding,
                                                    groups):
  torch.manual_seed(1)
  theirs = torch.nn.utils.weight_norm(torch.nn.ConvTranspose1d(
      8, 6, kernel, stride=stride, padding=padding, output_padding=output_padding, groups=groups))
  theirs.weight_g.data.uniform_(0.5, 2.0)
  assert theirs.weight_g.shape == (8, 1, 1)  # dim 0 of a transposed conv: the input channels
  ours = ConvTranspose1d(8, 6, kernel, stride=stride, padding=padding,
                         output_padding=output_padding, groups=groups, rngs=nnx.Rngs(0))
  _copy_weight_norm(ours, theirs)
  x = np.random.default_rng(1).normal(size=(2, 8, 11)).astype(np.float32)
  want = theirs(torch.from_numpy(x)).detach().numpy().transpose(0, 2, 1)
  np.testing.assert_allclose(ours(x.transpose(0, 2, 1)), want, atol=1e-5)


def test_plain_conv_and_wrong_channels():
  conv = Conv1d(3, 4, 3, padding=1, weight_norm=False, rngs=nnx.Rngs(0))
  assert not hasattr(conv, "weight_g") and conv.weight.shape == (4, 3, 3)
  assert conv(np.zeros((1, 9, 3), np.float32)).shape == (1, 9, 4)
  with pytest.raises(ValueError, match="expected 3 channels"):
    conv(np.zeros((1, 9, 4), np.float32))


def test_snake_matches_dac_formula():
  snake = Snake(3)
  snake.alpha[...] = np.array([0.5, 1.0, 2.0], np.float32).reshape(1, 3, 1)
  x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(1, 4, 3)
  alpha = np.array([0.5, 1.0, 2.0], np.float32)
  np.testing.assert_allclose(snake(x), x + np.sin(alpha * x) ** 2 / (alpha + 1e-9), rtol=1e-6)


@pytest.mark.parametrize("kernel,stride,padding,dilation", [
    ((5, 1), (3, 1), (2, 0), 1), ((3, 9), (1, 2), (1, 4), 1), ((3, 8), (1, 2), (2, 3), (2, 1))])
def test_conv2d_matches_torch_weight_norm(kernel, stride, padding, dilation):
  torch.manual_seed(2)
  theirs = torch.nn.utils.weight_norm(torch.nn.Conv2d(
      3, 5, kernel, stride=stride, padding=padding, dilation=dilation))
  theirs.weight_g.data.uniform_(0.5, 2.0)
  ours = Conv2d(3, 5, kernel, stride=stride, padding=padding, dilation=dilation,
                rngs=nnx.Rngs(0))
  _copy_weight_norm(ours, theirs)
  x = np.random.default_rng(2).normal(size=(2, 3, 17, 23)).astype(np.float32)
  want = theirs(torch.from_numpy(x)).detach().numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(ours(x.transpose(0, 2, 3, 1)), want, atol=1e-5)
