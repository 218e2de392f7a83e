"""hetensor.nn: encrypted transformer layers in the spirit of torch.nn.

One forward, three ways of running it::

    model = hetensor.nn.from_torch(torch_model, calibration=x_train)   # ranges -> polynomials
    y_plain = model(x_test)                  # numpy: the same polynomials in float64
    y_sim = model.simulate(x_test, ctx)      # + levels, bootstraps and measured CKKS noise
    model.compile(ctx, x_test)               # keys, encoded weights, bootstrap plan
    ct, _ = hetensor.nn.encrypt_tokens(ctx, x_test)
    y_enc = ctx.decrypt(model(ct))           # encrypted

A batch of sequences is one (batch * seq_len, features) token matrix, so many
inputs share each ciphertext's slots.
"""

from __future__ import annotations

from .activation import GELU, ReLU, Tanh
from . import backward as _backward  # noqa: F401 - registers each layer's backward pass
from . import functional
from .attention import GaussianKernelAttention, SoftmaxAttention
from .autograd import Parameter
from .compile import CompileReport
from .convert import from_torch
from .full import TrainableLinear, full_qkv
from .linear import Linear, LoRALinear
from .loss import CrossEntropyLoss, Loss, MSELoss
from .module import Module, Sequential
from .noise import NoiseModel, measure as measure_noise
from .norm import LayerNorm
from .tensors import PlainArray, SimTensor
from .tokens import encrypt_tokens
from .trainer import Trainer, plot_history
from .training import calibrate_training, decrypt_adapters, encrypt_adapters
from .transformer import FeedForward, MeanPool, TransformerClassifier, TransformerEncoderLayer

__all__ = [
    "CompileReport", "CrossEntropyLoss", "FeedForward", "GELU", "GaussianKernelAttention", "LayerNorm", "Linear", "LoRALinear",
    "Loss", "MSELoss", "MeanPool", "Module", "Parameter", "NoiseModel", "PlainArray", "ReLU", "Sequential", "SimTensor", "SoftmaxAttention",
    "Tanh", "Trainer", "TrainableLinear", "TransformerClassifier", "TransformerEncoderLayer", "calibrate_training", "decrypt_adapters",
    "encrypt_adapters", "encrypt_tokens", "from_torch", "full_qkv", "functional", "measure_noise", "plot_history",
]
