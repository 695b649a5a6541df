# Makes the PyTorch references of tests/vision_reference.rs. Run with torch 2.15 and
# safetensors 0.8 from the repository root: python3 tests/data/make_cv_reference.py
#
# - torch_batchnorm.safetensors: the state of a BatchNorm2d(3) (affine parameters moved
#   off (1, 0)) after two training batches; torch_batchnorm_io.safetensors: the batches,
#   the second batch's training output and an evaluation output.
# - torch_lenet.safetensors, torch_resnet8.safetensors: state dicts of LeNet-5 and of a
#   ResNet-8 (one block per stage; trained 3 steps so the batch-norm statistics move),
#   with their eval-mode logits on a fixed input in *_io.safetensors.
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, "benches")
from pytorch_resnet import LeNet5, ResNet  # noqa: E402  the same definitions as the benchmark

torch.manual_seed(0)


def ramp(shape, a, b):
    n = 1
    for s in shape:
        n *= s
    return (torch.sin(torch.arange(n, dtype=torch.float32) * a) * b).reshape(shape)


# --- BatchNorm2d ---------------------------------------------------------------------
bn = torch.nn.BatchNorm2d(3)
with torch.no_grad():
    bn.weight.copy_(torch.tensor([0.5, 1.5, -1.0]))
    bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
x1 = ramp([4, 3, 5, 5], 0.37, 2.0) + 1.0
x2 = ramp([4, 3, 5, 5], 0.53, 3.0) - 0.5
x3 = ramp([2, 3, 5, 5], 0.71, 1.5)
bn.train()
bn(x1)
y2 = bn(x2).detach()
bn.eval()
y3 = bn(x3).detach()
state = {k: v.clone() for k, v in bn.state_dict().items()}
save_file(state, "tests/data/torch_batchnorm.safetensors")
save_file({"x1": x1, "x2": x2, "x3": x3, "train_out": y2, "eval_out": y3}, "tests/data/torch_batchnorm_io.safetensors")
print("running_mean", bn.running_mean.tolist(), "running_var", bn.running_var.tolist())

# --- LeNet-5 -------------------------------------------------------------------------
lenet = LeNet5().eval()
x = ramp([2, 1, 28, 28], 0.013, 1.0)
with torch.no_grad():
    logits = lenet(x)
save_file(lenet.state_dict(), "tests/data/torch_lenet.safetensors")
save_file({"x": x, "logits": logits}, "tests/data/torch_lenet_io.safetensors")
print("lenet logits", logits.flatten().tolist())

# --- ResNet-8 ------------------------------------------------------------------------
resnet = ResNet(k=1)
opt = torch.optim.SGD(resnet.parameters(), lr=0.1)
resnet.train()
for step in range(3):
    xb = ramp([8, 1, 28, 28], 0.011 + step * 0.002, 1.0)
    loss = torch.nn.functional.cross_entropy(resnet(xb), torch.arange(8) % 10)
    opt.zero_grad()
    loss.backward()
    opt.step()
resnet.eval()
with torch.no_grad():
    logits = resnet(x)
save_file({k: v.contiguous() for k, v in resnet.state_dict().items()}, "tests/data/torch_resnet8.safetensors")
save_file({"x": x, "logits": logits}, "tests/data/torch_resnet8_io.safetensors")
print("resnet8 logits", logits.flatten().tolist())
