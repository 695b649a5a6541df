# Makes tests/data/torch_state_dict.safetensors and prints the values tests/state_dict.rs
# compares with. Run with torch 2.15 and safetensors 0.8: python3 tests/data/make_state_dict.py
import torch
from safetensors.torch import save_file

torch.manual_seed(0)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 3)
        self.bn = torch.nn.BatchNorm1d(3)
        self.fc2 = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


net = Net()
with torch.no_grad():  # affine parameters away from their (1, 0) initialisation
    net.bn.weight.uniform_(0.5, 1.5)
    net.bn.bias.uniform_(-0.5, 0.5)
net.train()
for _ in range(3):  # move the running statistics away from their initial values
    net(torch.randn(8, 4) * 2 + 1)
net.eval()
x = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 2 - 3
with torch.no_grad():
    y = net(x)
save_file(net.state_dict(), "torch_state_dict.safetensors")
for k, v in net.state_dict().items():
    print(k, v.dtype, list(v.shape), v.flatten().tolist())
print("x", x.flatten().tolist())
print("y", y.flatten().tolist())
